"""Routing's operations over a real store (no broker): merging, publishing in
order, the SLA timer's rounds."""
from datetime import timedelta

import eventlet
import pytest
from prometheus_client import REGISTRY

from services.routing import cases, follow_up, workflow
from services.routing import sla
from services.routing.lifecycle import Actor, Move
from services.routing.registry import RegistrySnapshot
from tests.unit.routing.factories import CONFIG, NOW, SLA_CONFIG, grid, stored_case
from wangge import events

SNAPSHOT = RegistrySnapshot(
    1,
    towns=[{"id": "zhangcheng", "name": "樟城镇", "head": {"id": "town-head", "name": "陈镇长"}}],
    communities=[{"id": "zc-nanmen", "name": "南门社区", "head": {"id": "community-head", "name": "周书记"}}],
    grids=[grid()],
    departments=[],
)


WORKER = Actor("G-1-w1", "grid_worker")
# a duplicate window of 0 hours: every request opens a case of its own
MERGING_OFF = {**CONFIG, "DUPLICATES": {**CONFIG["DUPLICATES"], "WINDOW_HOURS": 0}}
POLICY = sla.policy_for(SLA_CONFIG, "street_lighting", False)


@pytest.fixture
def classifier(request_classification):
    return request_classification


def counted(metric):
    return REGISTRY.get_sample_value(metric) or 0


def queued(record, event_type, at, version):
    return cases.outbox_entries(record, [(event_type, {"previous_status": "received"})], at, version)


# -- duplicates -----------------------------------------------------------------

def street_light_report(n):
    return {
        "request_id": f"r-{n}", "tracking_no": f"YT-20261128-{n:06d}", "channel": "hotline", "source": "hotline",
        "text": "南湖花园二区的路灯因为台风坏了，晚上很黑", "grid_id": "G-1", "reporter": {"name": f"居民{n}"},
    }


def test_a_burst_of_the_same_report_merges_into_one_case_with_every_reporter(store, classifier):
    case_id, _ = workflow.open_case(store, SNAPSHOT, classifier, CONFIG, street_light_report(1), NOW)
    conflicts_before = counted("wangge_routing_merge_conflicts_total")

    def report(n):
        return workflow.open_case(store, SNAPSHOT, classifier, CONFIG, street_light_report(n), NOW + timedelta(seconds=n))

    opened = list(eventlet.GreenPool(20).imap(report, range(2, 31)))

    assert {opened_id for opened_id, _ in opened} == {case_id}
    merged = store.get_case(case_id)
    assert merged["reporter_count"] == 30 and sorted(merged["request_ids"]) == sorted(f"r-{n}" for n in range(1, 31))
    assert counted("wangge_routing_merge_conflicts_total") > conflicts_before  # the merges did race


def test_a_request_delivered_again_after_its_case_closed_opens_no_case_and_joins_none(store, classifier):
    first_id, _ = workflow.open_case(store, SNAPSHOT, classifier, CONFIG, street_light_report(1), NOW)
    merged_id, _ = workflow.open_case(store, SNAPSHOT, classifier, CONFIG, street_light_report(2), NOW)
    assert merged_id == first_id
    store.cases.update_one({"_id": first_id}, {"$set": {"status": "closed"}})  # no longer a duplicate candidate
    later_id, _ = workflow.open_case(store, SNAPSHOT, classifier, CONFIG, street_light_report(3), NOW)
    assert later_id != first_id  # the same report now opens a case of its own

    # request 2 again, from a broker's redelivery: neither a case of its own nor a merge into the open one
    again_id, entries = workflow.open_case(store, SNAPSHOT, classifier, CONFIG, street_light_report(2), NOW)

    assert (again_id, entries) == (first_id, [])
    assert store.cases.count_documents({}) == 2
    assert store.get_case(later_id)["request_ids"] == ["r-3"]


def test_a_concurrent_delivery_whose_case_is_not_visible_yet_is_looked_up_again_then_retried(store, classifier, monkeypatch):
    case_id, _ = workflow.open_case(store, SNAPSHOT, classifier, MERGING_OFF, street_light_report(1), NOW)
    lookups = []
    seen = store.case_for_request

    def visible_on_the_second_look(request_id):
        lookups.append(request_id)
        return seen(request_id) if len(lookups) > 1 else None

    monkeypatch.setattr(store, "case_for_request", visible_on_the_second_look)
    assert workflow.open_case(store, SNAPSHOT, classifier, MERGING_OFF, street_light_report(1), NOW) == (case_id, [])

    monkeypatch.setattr(store, "case_for_request", lambda request_id: None)
    with pytest.raises(workflow.ConcurrentChange):
        workflow.open_case(store, SNAPSHOT, classifier, MERGING_OFF, street_light_report(1), NOW)


def test_with_merging_off_the_same_report_opens_a_case_each_time(store, classifier):
    opened = {workflow.open_case(store, SNAPSHOT, classifier, MERGING_OFF, street_light_report(n), NOW)[0] for n in (1, 2)}
    assert len(opened) == 2


# -- the outbox -------------------------------------------------------------------

def test_events_an_earlier_change_left_go_out_before_the_newer_ones(store):
    record = stored_case(status="assigned")
    leftover = queued(record, events.CASE_ASSIGNED, NOW, record["version"])
    store.insert_case({**record, "outbox": leftover, "outbox_pending_since": NOW})

    _, outbox = workflow.move_case(store, CONFIG, store.get_case(record["_id"]), "acknowledged", WORKER, None, NOW + timedelta(minutes=5))

    assert [entry["event_id"] for entry in outbox][:1] == [leftover[0]["event_id"]]
    assert [entry["event_type"] for entry in outbox] == [events.CASE_ASSIGNED, events.CASE_STATUS_CHANGED]
    assert store.get_case(record["_id"])["outbox_pending_since"] == NOW  # the timer still sees the oldest


def test_publishing_stops_at_the_first_failure_and_the_timer_resumes_from_there(store):
    record = stored_case()
    outbox = [entry for minutes in range(3) for entry in queued(record, events.CASE_STATUS_CHANGED, NOW + timedelta(minutes=minutes), minutes)]
    store.insert_case({**record, "outbox": outbox, "outbox_pending_since": NOW})
    sent = []

    def broker_hiccup(event_type, event):
        if len(sent) == 1:
            raise ConnectionError("broker gone")
        sent.append(event["event_id"])

    workflow.publish_outbox(store, broker_hiccup, no_results, record["_id"], outbox)
    left = store.get_case(record["_id"])
    assert [entry["event_id"] for entry in left["outbox"]] == [entry["event_id"] for entry in outbox[1:]]
    assert left["outbox_pending_since"] == NOW + timedelta(minutes=1)

    [due] = store.cases_with_stale_outbox(NOW + timedelta(minutes=1))
    workflow.publish_outbox(store, lambda event_type, event: sent.append(event["event_id"]), no_results, record["_id"], due["outbox"])
    assert sent == [entry["event_id"] for entry in outbox]
    assert store.cases_with_stale_outbox(NOW + timedelta(days=1)) == []


def no_results(body, **options):
    raise AssertionError("a resident's request owes no system a result")


def test_a_system_hears_each_status_change_of_its_request_right_after_the_event_and_in_order(store):
    hotline = {"reporter": None, "request_id": "r-1", "tracking_no": "YT-20261128-000001",
               "source": "hotline12345", "channel": "external", "external_ref": "HL-1"}
    record = stored_case(reporters=[hotline])
    worker = Actor("G-1-w1", "grid_worker")
    plans = [cases.plan_case_move(record, Move("acknowledged", worker, "马上去看"), NOW, POLICY)]
    outbox = cases.outbox_entries(cases.after(record, plans[0]), plans[0].events, NOW, 4)
    resolved = cases.after(record, plans[0])
    issued = follow_up.issue(NOW, timedelta(days=14))
    done = cases.plan_case_move({**resolved, "status": "acknowledged"}, Move("resolved", worker, "已更换灯泡"), NOW, POLICY, issued)
    outbox += cases.outbox_entries(cases.after(resolved, done), done.events, NOW + timedelta(hours=1), 5)
    store.insert_case({**record, "outbox": outbox, "outbox_pending_since": NOW})
    order = []

    def publish_result(body, **options):
        if body["status"] == "resolved" and not order.count("fail"):
            order.append("fail")
            raise ConnectionError("broker gone")
        order.append((options["routing_key"], options["message_id"], body["result"]))

    workflow.publish_outbox(store, lambda event_type, event: order.append(event_type), publish_result, record["_id"], outbox)
    workflow.publish_outbox(store, lambda event_type, event: order.append(event_type), publish_result, record["_id"],
                            store.get_case(record["_id"])["outbox"])
    status_events = [entry["event_id"] for entry in outbox if entry["event_type"] == events.CASE_STATUS_CHANGED]
    assert order == [
        events.CASE_STATUS_CHANGED, ("request.hotline12345.acknowledged", status_events[0], None),
        events.CASE_STATUS_CHANGED, "fail",  # the result of resolving waits, and so does what follows it
        ("request.hotline12345.resolved", status_events[1], "已更换灯泡"), events.FOLLOW_UP_REQUESTED,
    ]
    assert store.get_case(record["_id"])["outbox"] == []


# -- the SLA timer ----------------------------------------------------------------

def test_the_sla_timer_reads_a_due_case_without_its_history_and_raises_the_same_events(store):
    reporters = [{"request_id": f"r-{n}", "reporter": {"name": f"居民{n}"}} for n in range(3)]
    history = [{"kind": "note", "at": NOW, "by": "w", "note": "已联系"} for _ in range(50)]
    record = stored_case(reporters=reporters, reporter_count=3, timeline=history, notes=history, tokens=["路灯", "台风"])
    store.insert_case(record)
    missed = record["sla"]["first_response"]["due_at"]

    [read] = store.cases_due_for_sla(missed, cases.SLA_TICK_FIELDS)

    assert not {"timeline", "notes", "tokens", "request_ids"} & set(read) and len(read["reporters"]) == 1

    def planned(case):
        plan = cases.plan_sla_tick(case, missed, workflow.policy_for(CONFIG, case), SNAPSHOT)
        return plan.changes, cases.outbox_entries(cases.after(case, plan), plan.events, missed, case["version"] + 1)

    changes, outbox = planned(read)
    assert changes["level"] == "community"  # a breach that escalates: the most a tick reads
    assert (changes, outbox) == planned(store.get_case(record["_id"]))


def test_a_case_the_timer_cannot_check_waits_and_is_counted_while_the_others_are_checked(store):
    broken = stored_case(_id="C-broken", level="village")  # a level no escalation knows
    store.insert_case(broken)
    store.insert_case(stored_case(_id="C-sound"))
    failures_before = counted("wangge_routing_sla_check_failures_total")
    missed = broken["sla"]["first_response"]["due_at"]

    checked = workflow.check_deadlines(store, SNAPSHOT, CONFIG, missed)

    assert [case_id for case_id, _ in checked] == ["C-sound"]
    assert counted("wangge_routing_sla_check_failures_total") == failures_before + 1
    assert store.get_case("C-broken")["sla_next_check_at"] == missed + timedelta(minutes=10)
    assert store.cases_due_for_sla(missed + timedelta(minutes=1), cases.SLA_TICK_FIELDS) == []


# -- the resident's follow-up -------------------------------------------------------

def resolve(store, record, at):
    _, outbox = workflow.move_case(store, CONFIG, store.get_case(record["_id"]), "resolved", WORKER, "已修好", at)
    # the outbox holds every event not published yet: this resolution's come last
    asked = [entry["event"]["data"] for entry in outbox if entry["event_type"] == events.FOLLOW_UP_REQUESTED][-1]
    return asked["follow_up_token"]


def test_the_follow_up_token_answers_once(store):
    record = stored_case(status="in_progress", awaiting_response=False)
    store.insert_case(record)
    token = resolve(store, record, NOW)

    workflow.record_follow_up(store, CONFIG, token, True, 5, "很满意", NOW + timedelta(hours=1))

    closed = store.get_case(record["_id"])
    assert closed["status"] == "closed" and closed["follow_up"]["satisfaction"] == 5
    assert token not in str({key: value for key, value in closed.items() if key != "outbox"})
    with pytest.raises(follow_up.FollowUpTokenRefused):
        workflow.record_follow_up(store, CONFIG, token, False, 1, None, NOW + timedelta(hours=2))
    with pytest.raises(follow_up.FollowUpTokenUnknown):
        workflow.record_follow_up(store, CONFIG, token[:-2] + "xx", True, 5, None, NOW + timedelta(hours=2))


def test_a_follow_up_token_expires_and_a_later_resolution_replaces_it(store):
    record = stored_case(status="in_progress", awaiting_response=False)
    store.insert_case(record)
    first = resolve(store, record, NOW)
    with pytest.raises(follow_up.FollowUpTokenRefused):
        workflow.record_follow_up(store, CONFIG, first, True, 5, None, NOW + timedelta(days=CONFIG["FOLLOW_UP"]["TOKEN_DAYS"]))

    workflow.move_case(store, CONFIG, store.get_case(record["_id"]), "reopened", WORKER, "居民来电说又坏了", NOW + timedelta(days=1))
    second = resolve(store, record, NOW + timedelta(days=2))
    with pytest.raises(follow_up.FollowUpTokenUnknown):
        workflow.record_follow_up(store, CONFIG, first, True, 5, None, NOW + timedelta(days=2))
    workflow.record_follow_up(store, CONFIG, second, True, 4, None, NOW + timedelta(days=2))
    assert store.get_case(record["_id"])["status"] == "closed"
