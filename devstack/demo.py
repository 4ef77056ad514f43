"""Demo data for a newcomer's first look: a county shaped like Yongtai in
routing's registry, and requests like the ones in the article, filed through
the public API. Loading again adds nothing: the registry keeps its version and
each request has a fixed Idempotency-Key; the study demo is added only to a
study service without campaigns."""
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


def load(ports, services, admin):
    """The demo county, study data and requests, as the county's administrator
    (``admin``: a requests session with its token); residents file anonymously."""
    county = build_county()
    if "routing" in services:
        response = admin.put(f"http://127.0.0.1:{ports['routing']}/api/v1/registry", json=county, timeout=300)
        if response.status_code not in (200, 409):  # 409: this version is already in force
            response.raise_for_status()
    if "study" in services:
        load_study(f"http://127.0.0.1:{ports['study']}", county, admin)
    intake = f"http://127.0.0.1:{ports['intake']}/api/v1/requests"
    for key, body in DEMO_REQUESTS:
        response = requests.post(intake, json=body, headers={"Idempotency-Key": key}, timeout=10)
        response.raise_for_status()
