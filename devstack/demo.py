"""Demo data for a newcomer's first look: a county shaped like Yongtai in
routing's registry, and requests like the ones in the article, filed through
the public API. Loading again adds nothing: the registry keeps its version and
each request has a fixed Idempotency-Key."""
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
        "channel": "hotline",
        "source": "hotline12345",
        "text": "方广社区悦山小区三号楼停水两天了，什么时候能恢复？",
        "address": "葛岭镇方广社区悦山小区3号楼",
        "external_ref": "HL-DEMO-0001",
    }),
]


def load(ports, services):
    if "routing" in services:
        response = requests.put(f"http://127.0.0.1:{ports['routing']}/api/v1/registry", json=build_county(), timeout=300)
        if response.status_code not in (200, 409):  # 409: this version is already in force
            response.raise_for_status()
    intake = f"http://127.0.0.1:{ports['intake']}/api/v1/requests"
    for key, body in DEMO_REQUESTS:
        response = requests.post(intake, json=body, headers={"Idempotency-Key": key}, timeout=10)
        response.raise_for_status()
