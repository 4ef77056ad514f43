"""Demo data for a newcomer's first look: a county shaped like Yongtai in
routing's registry, and requests like the ones in the article, filed through
the public API. Loading again adds nothing: the registry keeps its version and
each request has a fixed Idempotency-Key; the study demo is added only to a
study service without campaigns, the care demo only to a care service without
priority residents."""
from datetime import datetime, timedelta, timezone

import requests

from devstack.demo_county import build_county

DEMO_REQUESTS = [
    ("demo-streetlight", {
        "channel": "wechat_group",
        "text": "社区工作人员，南湖花园二区的路灯因为海葵台风受损，希望能够帮忙解决一下。",
        "address": "樟城镇南门社区南湖花园二区",
        "wechat_group_id": "wx-zc-nanmen-02",
        "reporter": {"name": "林先生", "phone": "13800000001"},
    }),
    ("demo-elderly-subsidy", {
        "channel": "visit",  # filed by the grid worker during a home visit, so the grid is known
        "grid_id": "YT-CF-TANGYANG-01",
        "text": "汤洋村鲍老伯高龄独居，儿子刚突发疾病过世，生活困难，需要帮助申报补助。",
        "address": "城峰镇汤洋村",
        "category": "welfare",
    }),
    ("demo-water", {
        "channel": "hotline",  # the hotline's own system would file with its integrator token
        "text": "方广社区悦山小区三号楼停水两天了，什么时候能恢复？",
        "address": "葛岭镇方广社区悦山小区3号楼",
        "external_ref": "HL-DEMO-0001",
    }),
]


DEMO_CONTENT = {
    "title": "扎根基层，从小事做起",
    "body": "学习习近平新时代中国特色社会主义思想，扎根基层，从小事做起，为社区美丽建设出一份力。",
    "tags": ["主题教育", "网格课堂"],
    "team": "葛岭镇网格课堂宣讲队",
    "media": [{"type": "picture", "url": "https://example.org/study/poster.jpg"}, {"type": "audio", "url": "https://example.org/study/lesson.mp3"}],
}


def load_study(study_url, county, admin):
    """Members for 葛岭镇's grids, a study item and a campaign to the town, once."""
    if admin.get(f"{study_url}/api/v1/campaigns", timeout=10).json()["items"]:
        return
    geling = next(town for town in county["towns"] if town["id"] == "geling")
    members = [
        {"member_id": f"{grid['id']}-m{n}", "name": name, "grid_id": grid["id"], "kind": kind, "phone": f"1390{index:03d}{n:04d}"}
        for index, grid in enumerate(g for community in geling["communities"] for g in community["grids"])
        for n, (name, kind) in enumerate([("周婷艳", "party_member"), ("陈建国", "party_member"), ("林秀英", "resident")])
    ]
    admin.post(f"{study_url}/api/v1/members/import", json={"members": members}, timeout=60).raise_for_status()
    content = admin.post(f"{study_url}/api/v1/contents", json=DEMO_CONTENT, timeout=10).json()
    admin.post(f"{study_url}/api/v1/campaigns", timeout=30, json={
        "title": "网格课堂：主题教育学习", "content_ids": [content["content_id"]], "target": {"scope": "towns", "ids": ["geling"]},
        "schedule": {"at": (datetime.now(timezone.utc) + timedelta(seconds=30)).isoformat()},
        "reminder": {"after_hours": 24, "max": 2},
    }).raise_for_status()


# 重点关爱对象 of 南门社区 grid 02 and 汤洋村: (days since the last visit, kinds); the first is
# overdue from the start (weekly, last visited ten days ago), so its worker hears at once.
DEMO_RESIDENTS = [
    ({"name": "林依伯", "phone": "13900000101", "grid_id": "YT-ZC-NANMEN-02", "address": "南湖花园二区3号楼101", "kinds": ["living_alone"],
      "notes": "独居，腿脚不便，子女在外地"}, 10),
    ({"name": "陈阿婆", "grid_id": "YT-ZC-NANMEN-02", "address": "南湖花园一区5号楼302", "kinds": ["empty_nest", "seriously_ill"]}, 3),
    ({"name": "鲍小明", "grid_id": "YT-CF-TANGYANG-01", "address": "城峰镇汤洋村18号", "kinds": ["left_behind_child"],
      "notes": "父母在外务工，随祖母生活"}, 12),
]


def load_care(care_url, admin):
    """A few priority residents (one overdue), a volunteer activity and a to-do item, once."""
    if admin.get(f"{care_url}/api/v1/care/residents", timeout=10).json()["total"]:
        return
    now = datetime.now(timezone.utc)
    for body, days in DEMO_RESIDENTS:
        admin.post(f"{care_url}/api/v1/care/residents", timeout=30,
                   json={**body, "last_visited_at": (now - timedelta(days=days)).isoformat()}).raise_for_status()
    admin.post(f"{care_url}/api/v1/volunteer/activities", timeout=30, json={
        "title": "南湖花园敬老义剪", "grid_id": "YT-ZC-NANMEN-02", "starts_at": (now - timedelta(days=2)).isoformat(), "hours": 3,
        "participants": [{"name": "志愿者"}, {"name": "志愿者"}, {"name": "志愿者"}]}).raise_for_status()
    admin.post(f"{care_url}/api/v1/todo", timeout=30, json={
        "title": "南湖花园二区路灯改造", "area": "樟城镇南门社区南湖花园二区", "town_id": "zhangcheng", "community_id": "zc-nanmen",
        "owner_department": "县城市管理局", "promised_by": (now + timedelta(days=30)).date().isoformat(), "status": "in_progress",
        "progress_notes": "已完成勘察，材料采购中"}).raise_for_status()


def load(ports, services, admin):
    """The demo county, study and care data and requests, as the county's administrator
    (``admin``: a requests session with its token); residents file anonymously."""
    county = build_county()
    if "routing" in services:
        response = admin.put(f"http://127.0.0.1:{ports['routing']}/api/v1/registry", json=county, timeout=300)
        if response.status_code not in (200, 409):  # 409: this version is already in force
            response.raise_for_status()
    if "study" in services:
        load_study(f"http://127.0.0.1:{ports['study']}", county, admin)
    if "care" in services:
        load_care(f"http://127.0.0.1:{ports['care']}", admin)
    intake = f"http://127.0.0.1:{ports['intake']}/api/v1/requests"
    for key, body in DEMO_REQUESTS:
        response = requests.post(intake, json=body, headers={"Idempotency-Key": key}, timeout=10)
        response.raise_for_status()
