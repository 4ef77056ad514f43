"""Small builders for routing's unit tests."""
from datetime import datetime, timezone

from services.routing import sla

NOW = datetime(2026, 11, 28, 2, 0, tzinfo=timezone.utc)

SLA_CONFIG = {
    "WARN_FRACTION": 0.25,
    "DEFAULT": {"FIRST_RESPONSE_MINUTES": 120, "RESOLUTION_HOURS_GRID": 72, "RESOLUTION_HOURS_ESCALATED": 360},
    "URGENT": {"FIRST_RESPONSE_MINUTES": 30, "RESOLUTION_HOURS_GRID": 24, "RESOLUTION_HOURS_ESCALATED": 72},
    "CATEGORIES": {"welfare": {"RESOLUTION_HOURS_GRID": 168}},
}


def square(lon, lat, size=0.01):
    return {"type": "Polygon", "coordinates": [[[lon, lat], [lon + size, lat], [lon + size, lat + size], [lon, lat + size], [lon, lat]]]}


def grid(grid_id="G-1", lon=118.90, lat=25.80, **overrides):
    record = {
        "id": grid_id, "name": f"{grid_id}网格", "town_id": "zhangcheng", "town_name": "樟城镇",
        "community_id": "zc-nanmen", "community_name": "南门社区",
        "head": {"id": f"{grid_id}-head", "name": "张水如", "phone": "13800000000"},
        "workers": [
            {"id": f"{grid_id}-w1", "name": "李梅", "phone": "13800000001", "on_duty": True},
            {"id": f"{grid_id}-w2", "name": "王强", "phone": "13800000002", "on_duty": True},
        ],
        "wechat_groups": [f"wx-{grid_id.lower()}"], "buildings": [], "area": square(lon, lat),
    }
    record.update(overrides)
    return record


FIRST_CASE_ID = "C-YT-20261128-000001"


def case(status="assigned", level="grid", **overrides):
    policy = sla.policy_for(SLA_CONFIG, "street_lighting", False)
    case_id = overrides.get("_id", FIRST_CASE_ID)
    record = {
        "_id": case_id, "version": 3, "request_id": "r-1", "tracking_no": "YT-20261128-000001",
        # a request is in one case at most: each other case of a test has its own
        "request_ids": ["r-1" if case_id == FIRST_CASE_ID else f"r-of-{case_id}"], "reporters": [{"reporter": {"name": "林先生", "phone": "13800000009"}}], "reporter_count": 1,
        "status": status, "level": level, "grid_id": "G-1", "grid_name": "G-1网格", "community_id": "zc-nanmen",
        "town_id": "zhangcheng", "category": "street_lighting", "complexity": "simple", "urgent": False,
        "department": None, "assignee": {"id": "G-1-w1", "name": "李梅", "role": "worker"},
        "grid_head": {"id": "G-1-head", "name": "张水如"}, "wechat_group_ids": ["wx-g-1"],
        "opened_at": NOW, "first_response_at": None, "awaiting_response": True, "sla": sla.start_clocks(NOW, policy),
        "five_steps": [],
    }
    record.update(overrides)
    return record

CONFIG = {
    "SLA": {**SLA_CONFIG, "FAILED_CHECK_RETRY_MINUTES": 10},
    "DUPLICATES": {"WINDOW_HOURS": 72, "THRESHOLD": 0.4, "MERGE_ATTEMPTS": 50},
    "FOLLOW_UP": {"TOKEN_DAYS": 14},
}


def stored_case(**overrides):
    """A case as the store holds it, due for its first SLA check."""
    record = case(**overrides)
    return {
        "tracking_no": record["tracking_no"], "text": "南湖花园二区的路灯因为台风坏了", "category_name": "路灯照明",
        "timeline": [], "notes": [], "tokens": [], "outbox": [], "outbox_pending_since": None,
        "sla_next_check_at": sla.next_check_at(record),
        **record,
    }
