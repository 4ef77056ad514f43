"""What notify makes of care's visit_overdue: who hears, and the message, from a real event."""
from datetime import datetime, timezone

import pytest

from services.notify import recipients
from services.notify.delivery import template_context
from services.notify.templates import Templates
from wangge import events

TEMPLATES = Templates("Asia/Shanghai")


def overdue_event(**overrides):
    data = {"resident_id": "CR-1", "resident_name": "鲍**", "kinds": ["living_alone"], "kind_names": ["独居老人"], "grid_id": "G-1",
            "grid_name": "汤洋村第一网格", "community_id": "c-1", "town_id": "t-1", "due_at": datetime(2026, 11, 28, 1, 0, tzinfo=timezone.utc),
            "stage": "worker", "worker": {"id": "w-1", "name": "余雪华"}, "grid_head": {"id": "h-1", "name": "李志"}, **overrides}
    return events.read_event(events.VISIT_OVERDUE, events.build_event(events.VISIT_OVERDUE, data))["data"]


@pytest.mark.parametrize("overrides, expected", [
    ({}, [("w-1", "visit_overdue.worker")]),
    ({"stage": "grid_head"}, [("h-1", "visit_overdue.grid_head")]),
    ({"worker": None}, [("h-1", "visit_overdue.grid_head")]),  # a grid without workers: its head hears at once
    ({"stage": "grid_head", "grid_head": None}, []),
])
def test_the_worker_hears_when_a_visit_falls_overdue_and_the_grid_head_after_the_grace(overrides, expected):
    chosen = recipients.for_visit_overdue(overdue_event(**overrides))
    assert [(recipient.key, kind) for recipient, kind in chosen] == expected


@pytest.mark.parametrize("stage", ["worker", "grid_head"])
def test_each_stage_renders_in_county_time_with_the_name_masked(stage):
    data = overdue_event(stage=stage)
    [(recipient, kind)] = recipients.for_visit_overdue(data)
    subject, body = TEMPLATES.render(kind, template_context(data, recipient))
    assert subject and "11月28日 09:00" in body and "鲍**" in body and "独居老人" in body and "None" not in body


def test_an_event_with_a_phone_or_an_address_is_not_in_the_contract():
    assert "phone" not in events.VisitOverdueData().fields and "address" not in events.VisitOverdueData().fields
