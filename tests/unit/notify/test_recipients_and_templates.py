from datetime import datetime, timezone

import pytest
from jinja2 import UndefinedError

from services.notify import recipients
from services.notify.delivery import template_context
from services.notify.templates import Templates
from wangge import events

TEMPLATES = Templates("Asia/Shanghai")
CASE_KINDS = [kind for kind in TEMPLATES.kinds() if kind.split(".")[0] in events.CASE_EVENTS]


def case_data(**overrides):
    data = {
        "case_id": "C-YT-20261128-000001", "request_id": "r", "tracking_no": "YT-20261128-000001", "status": "assigned",
        "previous_status": "received", "at": datetime(2026, 11, 28, 1, 0, tzinfo=timezone.utc), "grid_id": "G-1", "grid_name": "南门社区第二网格",
        "community_id": "zc-nanmen", "town_id": "zhangcheng", "category": "street_lighting", "category_name": "路灯照明",
        "complexity": "simple", "urgent": False, "level": "grid", "department": None,
        "assignee": {"id": "w-1", "name": "李梅", "phone": "13800000001"},
        "grid_head": {"id": "h-1", "name": "张水如", "phone": "13800000000"},
        "reporter": {"name": "林先生", "phone": "13912340001"}, "wechat_group_ids": ["wx-1"], "reporter_count": 2,
        "summary": "南湖花园二区的路灯因为海葵台风受损", "actor": "routing", "note": "需要协调",
        "sla_clock": "first_response", "due_at": datetime(2026, 11, 28, 3, 0, tzinfo=timezone.utc),
    }
    data.update(overrides)
    return data


DEPARTMENT = {"id": "power", "name": "县供电公司路灯所", "contact": {"id": "d-power", "name": "值班员", "email": "lamps@example.gov.cn"}}


@pytest.mark.parametrize(
    "event_type, data, expected",
    [
        (events.CASE_ASSIGNED, case_data(), {("w-1", "case_assigned.worker"), ("resident:YT-20261128-000001", "case_assigned.resident")}),
        (events.CASE_ASSIGNED, case_data(reporter=None), {("w-1", "case_assigned.worker")}),
        (events.CASE_ESCALATED, case_data(level="town", assignee={"id": "t-1", "name": "陈"}), {("t-1", "case_escalated.lead"), ("h-1", "case_escalated.grid_head")}),
        (events.CASE_ESCALATED, case_data(level="department", department=DEPARTMENT), {("d-power", "case_escalated.department"), ("h-1", "case_escalated.grid_head")}),
        (events.SLA_BREACHED, case_data(), {("h-1", "sla_breached.grid_head"), ("w-1", "sla_breached.worker")}),
        (events.SLA_WARNING, case_data(), {("w-1", "sla_warning.worker")}),
        (events.CASE_MERGED, case_data(), {("resident:YT-20261128-000001", "case_merged.resident")}),
        (events.FOLLOW_UP_REQUESTED, case_data(status="resolved"), {("resident:YT-20261128-000001", "follow_up_requested.resident")}),
        (events.CASE_STATUS_CHANGED, case_data(status="in_progress"), set()),
        (events.CASE_STATUS_CHANGED, case_data(status="rejected", note="不属于本网格"), {("resident:YT-20261128-000001", "case_status_changed.resident")}),
    ],
)
def test_recipients_follow_the_event(event_type, data, expected):
    chosen = recipients.for_case_event(event_type, data)
    assert {(recipient.key, kind) for recipient, kind in chosen} == expected


def test_the_same_person_in_two_roles_hears_once():
    same = case_data(grid_head={"id": "w-1", "name": "李梅"})
    assert len(recipients.for_case_event(events.SLA_BREACHED, same)) == 1


def test_every_kind_a_recipient_can_get_has_a_template():
    kinds = set(TEMPLATES.kinds())
    for event_type in events.CASE_EVENTS:
        # assignment is always to a grid worker (routing puts the case back at grid level);
        # escalation always reaches community or above
        levels = {events.CASE_ASSIGNED: ("grid",), events.CASE_ESCALATED: ("community", "town", "department")}.get(
            event_type, ("grid", "community", "town", "department"))
        for level in levels:
            data = case_data(level=level, department=DEPARTMENT, status="rejected")
            for _, kind in recipients.for_case_event(event_type, data):
                assert kind in kinds, f"no template for {kind}"


@pytest.mark.parametrize("kind", CASE_KINDS)
def test_every_template_renders_from_a_real_event(kind):
    data = case_data(department=DEPARTMENT, level="department" if "department" in kind else "town")
    event = events.build_event(kind.split(".")[0], data)
    subject, body = TEMPLATES.render(kind, template_context(events.read_event(kind.split(".")[0], event)["data"]))
    assert subject and body
    assert "None" not in body and "{{" not in body


def test_a_variable_outside_the_event_contract_is_an_error_not_a_blank(tmp_path):
    (tmp_path / "case_assigned.resident.txt.j2").write_text("您好，{{ assignee_nickname }}会联系您。", encoding="utf-8")
    with pytest.raises(UndefinedError):
        Templates("Asia/Shanghai", tmp_path).render("case_assigned.resident", template_context(case_data()))


def test_deadlines_show_in_county_time():
    _, body = TEMPLATES.render("sla_warning.worker", template_context(case_data(due_at=datetime(2026, 11, 28, 3, 0, tzinfo=timezone.utc))))
    assert "11月28日 11:00" in body and "响应" in body


@pytest.mark.parametrize("kind", CASE_KINDS)
def test_every_template_renders_from_a_minimal_event_without_blanks(kind):
    person = {"id": "p-1", "name": "李梅", "phone": "13800000001", "email": "p@example.gov.cn"}
    minimal = {
        "case_id": "C-1", "request_id": "r", "tracking_no": "YT-20261128-000001", "status": "rejected",
        "at": datetime(2026, 11, 28, 1, 0, tzinfo=timezone.utc), "assignee": person, "note": "不属于本网格",
        "department": {"id": "power", "name": "县供电公司路灯所", "contact": person},
        "due_at": datetime(2026, 11, 28, 3, 0, tzinfo=timezone.utc), "sla_clock": "resolution", "level": "town",
    }
    event = events.read_event(kind.split(".")[0], events.build_event(kind.split(".")[0], minimal))
    _, body = TEMPLATES.render(kind, template_context(event["data"]))
    assert "None" not in body


def study_data(**overrides):
    data = {
        "campaign_id": "CP-1", "round": "2026-11-28T01:00:00+00:00", "title": "学习贯彻主题教育", "grid_id": "G-1",
        "grid_name": "悦山网格", "wechat_group_ids": ["wx-1", "wx-2"], "due_at": datetime(2026, 11, 28, 1, 0, tzinfo=timezone.utc),
        "contents": [{"content_id": "CT-1", "version": 2, "title": "扎根基层", "summary": "从小事做起",
                      "media": [{"type": "audio", "url": "https://example.org/a.mp3"}]}],
        "members": [{"member_id": "m-1", "name": "周婷艳", "phone": "13800000011"}, {"member_id": "m-2", "name": "无电话"}],
        "reminder_number": 2, "final_reminder": True,
    }
    data.update(overrides)
    return data


def test_campaign_reaches_every_group_of_the_grid():
    chosen = recipients.for_study_event(events.CAMPAIGN_DUE, study_data())
    assert [(r.key, r.group, kind) for r, kind in chosen] == [
        ("group:wx-1", "wx-1", "campaign_due.grid_group"), ("group:wx-2", "wx-2", "campaign_due.grid_group")]


def test_reminders_go_to_members_who_can_be_reached():
    chosen = recipients.for_study_event(events.STUDY_REMINDER_DUE, study_data())
    assert [(r.key, kind) for r, kind in chosen] == [("m-1", "study_reminder_due.member")]


@pytest.mark.parametrize("event_type", events.STUDY_EVENTS)
def test_study_templates_render_from_real_events(event_type):
    data = events.read_event(event_type, events.build_event(event_type, study_data()))["data"]
    for recipient, kind in recipients.for_study_event(event_type, data):
        _, body = TEMPLATES.render(kind, template_context(data, recipient))
        assert "None" not in body and "学习" in body
        assert recipient.role != "member" or body.startswith(recipient.name)
    _, group_notice = TEMPLATES.render("campaign_due.grid_group", template_context(data))
    assert "《扎根基层》" in group_notice and "https://example.org/a.mp3" in group_notice


def test_operators_read_sent_messages_without_follow_up_links_or_phone_numbers():
    from services.notify.schemas import NotificationViewSchema

    shown = NotificationViewSchema().dump({"body": "请回访 https://wangge.example/follow-up/Qx3_k-9aZ 或致电 13812345678"})["body"]
    assert "Qx3_k-9aZ" not in shown and "13812345678" not in shown
    assert "/follow-up/…" in shown


def test_a_county_in_another_zone_sees_its_own_clock():
    urumqi = Templates("Asia/Urumqi")  # UTC+6
    _, body = urumqi.render("sla_warning.worker", template_context(case_data(due_at=datetime(2026, 11, 28, 3, 0, tzinfo=timezone.utc))))
    assert "11月28日 09:00" in body


def test_quiet_hours_roles_are_a_setting():
    from services.notify.delivery import quiet_roles

    assert quiet_roles({"ROLES": "resident, member"}) == {"resident", "member"}
    assert quiet_roles({"ROLES": ["resident"]}) == {"resident"}
