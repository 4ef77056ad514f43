"""Routing's storage over a real store."""
from datetime import timedelta

import eventlet
import pytest
from pymongo import monitoring

from services.routing import cases
from services.routing.registry import RegistryCache, flatten, validate_registry
from services.routing.storage import RequestInAnotherCase, RoutingStore, StaleRegistry
from wangge.mongo import connect
from tests.unit.routing.factories import NOW, case, square


def registry(version, grid_ids):
    grids = [
        {"id": grid_id, "name": grid_id, "head": {"id": f"h-{grid_id}", "name": "张"}, "area": square(118.9 + 0.01 * n, 25.8)}
        for n, grid_id in enumerate(grid_ids)
    ]
    return {"version": version, "county": {"id": "yt", "name": "永泰县"},
            "towns": [{"id": "zc", "name": "樟城镇", "communities": [{"id": "nm", "name": "南门社区", "grids": grids}]}]}


def load(store, document):
    towns, communities, grids, departments = flatten(validate_registry(document))
    return store.replace_registry(document["version"], document["county"],
                                  {"towns": towns, "communities": communities, "grids": grids, "departments": departments}, NOW)


def test_new_edition_replaces_the_old_one_whole(store):
    load(store, registry(1, ["G-1", "G-2"]))
    counts = load(store, registry(2, ["G-2", "G-3", "G-4"]))
    assert counts["grids"] == 3
    assert store.registry_edition() == 2
    assert [g["id"] for g in store.registry_records("grids", 2)] == ["G-2", "G-3", "G-4"]


def test_a_replaced_edition_stays_whole_until_the_next_load(store):
    load(store, registry(1, ["G-1", "G-2"]))
    read_just_before_the_switch = store.registry_edition()
    load(store, registry(2, ["G-2", "G-3", "G-4"]))
    assert [g["id"] for g in store.registry_records("grids", read_just_before_the_switch)] == ["G-1", "G-2"]
    assert store.count_registry_records("towns", read_just_before_the_switch) == 1
    load(store, registry(3, ["G-5"]))
    assert store.count_registry_records("grids", 1) == store.count_registry_records("towns", 1) == 0
    assert store.count_registry_records("grids", 2) == 3


class EditionsSwitchingDuringRead(RoutingStore):
    """Other processes load ``editions`` while this one reads its first grids."""

    def __init__(self, database, editions):
        super().__init__(database)
        self.editions = list(editions)

    def registry_records(self, kind, edition, *args, **kwargs):
        while kind == "grids" and self.editions:
            load(self, self.editions.pop(0))
        return super().registry_records(kind, edition, *args, **kwargs)


def test_a_snapshot_is_never_half_a_registry_even_when_editions_switch_during_its_read(store):
    load(store, registry(1, ["G-1", "G-2"]))
    racing = EditionsSwitchingDuringRead(store.database, [registry(2, ["G-3"]), registry(3, ["G-4", "G-5"])])
    snapshot = RegistryCache(check_seconds=5).current(racing, NOW)
    assert snapshot.edition == 3
    assert sorted(snapshot.index.grids) == ["G-4", "G-5"] and list(snapshot.towns) == ["zc"]


def test_edition_not_newer_is_refused(store):
    load(store, registry(3, ["G-1"]))
    with pytest.raises(StaleRegistry):
        load(store, registry(3, ["G-9"]))
    assert [g["id"] for g in store.registry_records("grids", 3)] == ["G-1"]


def test_grid_areas_answer_geo_queries_in_the_store(store):
    load(store, registry(1, ["G-1", "G-2"]))
    point = {"type": "Point", "coordinates": [118.915, 25.805]}
    found = store.database["grids"].find({"area": {"$geoIntersects": {"$geometry": point}}})
    assert [g["id"] for g in found] == ["G-2"]


def test_of_two_concurrent_changes_exactly_one_wins(store):
    record = case(version=0)
    record.pop("sla")
    store.insert_case({**record, "timeline": [], "outbox": []})
    pool = eventlet.GreenPool(2)
    results = list(pool.imap(lambda status: store.apply_change(record["_id"], 0, {"status": status}), ["acknowledged", "escalated"]))
    assert sorted(results) == [False, True]
    assert store.get_case(record["_id"])["version"] == 1


def test_a_request_opens_at_most_one_case(store):
    record = {**case(version=0), "timeline": [], "outbox": []}
    assert store.insert_case(record) is True
    assert store.insert_case(record) is False
    assert store.case_for_request("r-1")["_id"] == record["_id"]


def test_a_request_in_one_case_cannot_join_another(store):
    store.insert_case({**case(version=0), "timeline": [], "outbox": []})
    other = {**case(version=0), "_id": "C-YT-20261128-000002", "request_ids": ["r-2"], "timeline": [], "outbox": []}
    assert store.insert_case({**other, "request_ids": ["r-1"]}) is False
    assert store.insert_case(other) is True
    with pytest.raises(RequestInAnotherCase):
        store.apply_change(other["_id"], 0, {}, extra_pushes={"request_ids": "r-1"})
    assert store.get_case(other["_id"])["request_ids"] == ["r-2"]


def test_a_store_with_the_earlier_plain_request_index_gets_the_unique_one(scratch_database):
    scratch_database["cases"].create_index([("request_ids", 1)], name="request_ids")
    RoutingStore(scratch_database).ensure_indexes()
    assert scratch_database["cases"].index_information()["request_ids"].get("unique") is True


def test_a_store_with_a_request_in_two_cases_says_which_rather_than_start_without_the_guarantee(scratch_database):
    scratch_database["cases"].create_index([("request_ids", 1)], name="request_ids")
    scratch_database["cases"].insert_many([{"_id": "C-1", "request_ids": ["r-1", "r-2"]}, {"_id": "C-2", "request_ids": ["r-2"]}])
    with pytest.raises(RuntimeError, match="requests in more than one case.*r-2"):
        RoutingStore(scratch_database).ensure_indexes()
    assert "request_ids" in scratch_database["cases"].index_information()


def test_open_cases_are_counted_for_each_worker_asked_about(store):
    for n, (worker, status) in enumerate([("w1", "assigned"), ("w1", "in_progress"), ("w1", "closed"), ("w2", "reopened"), ("w9", "assigned")]):
        store.insert_case(case(_id=f"C-{n}", status=status, assignee={"id": worker, "name": "李梅", "role": "worker"}))
    assert store.open_cases_by_assignee(["w1", "w2", "w3"]) == {"w1": 2, "w2": 1}


class AggregatesSent(monitoring.CommandListener):
    def __init__(self):
        self.sent = 0

    def started(self, event):
        self.sent += event.command_name == "aggregate"

    def succeeded(self, event):
        pass

    def failed(self, event):
        pass


def test_concurrent_counts_of_open_cases_share_commands_and_each_is_answered_for_its_own_workers(store, mongo_uri):
    for n, worker in enumerate(["w1", "w1", "w2", "w3", "w3", "w3"]):
        store.insert_case(case(_id=f"C-{n}", assignee={"id": worker, "name": "李梅", "role": "worker"}))
    aggregates = AggregatesSent()
    questions = [["w1", "w2"], ["w2", "w3"], ["w3", "w4"], ["w1", "w4"]] * 3
    with connect(mongo_uri, event_listeners=[aggregates]) as client:
        counting = RoutingStore(client[store.database.name])
        answers = list(eventlet.GreenPool(len(questions)).imap(counting.open_cases_by_assignee, questions))

    assert answers == [{"w1": 2, "w2": 1}, {"w2": 1, "w3": 3}, {"w3": 3}, {"w1": 2}] * 3
    assert 1 <= aggregates.sent < len(questions)


def test_published_events_leave_the_outbox(store):
    entries = [{"event_id": f"e{n}", "queued_at": NOW} for n in range(3)]
    store.insert_case({**case(version=0), "timeline": [], "outbox": entries, "outbox_pending_since": NOW})
    store.clear_outbox("C-YT-20261128-000001", ["e0", "e2"])
    assert [e["event_id"] for e in store.get_case("C-YT-20261128-000001")["outbox"]] == ["e1"]
    assert [c["_id"] for c in store.cases_with_stale_outbox(NOW)] == ["C-YT-20261128-000001"]
    store.clear_outbox("C-YT-20261128-000001", ["e1"])
    assert store.cases_with_stale_outbox(NOW) == []
    assert store.get_case("C-YT-20261128-000001")["outbox_pending_since"] is None


def test_an_outbox_published_whole_is_emptied_in_the_same_write_that_takes_the_case_off_the_timer(store):
    entries = [{"event_id": f"e{n}", "queued_at": NOW} for n in range(2)]
    store.insert_case({**case(version=0), "timeline": [], "outbox": entries, "outbox_pending_since": NOW})
    store.clear_outbox("C-YT-20261128-000001", ["e1", "e0"])
    cleared = store.get_case("C-YT-20261128-000001")
    assert (cleared["outbox"], cleared["outbox_pending_since"]) == ([], None)


def test_an_outbox_left_with_events_is_found_by_the_timer_from_the_oldest_of_them(store):
    queued = [NOW - timedelta(minutes=n) for n in (3, 2, 1)]
    entries = [{"event_id": f"e{n}", "queued_at": at} for n, at in enumerate(queued)]
    store.insert_case({**case(version=0), "timeline": [], "outbox": entries, "outbox_pending_since": queued[0]})
    store.clear_outbox("C-YT-20261128-000001", ["e0"])
    assert store.get_case("C-YT-20261128-000001")["outbox_pending_since"] == queued[1]
    assert store.cases_with_stale_outbox(queued[0]) == []
    assert [c["_id"] for c in store.cases_with_stale_outbox(queued[1])] == ["C-YT-20261128-000001"]


def test_events_added_by_a_change_while_the_outbox_was_published_stay_and_are_found_by_the_timer(store):
    first, added = NOW - timedelta(minutes=2), NOW - timedelta(minutes=1)
    store.insert_case({**case(version=0), "timeline": [], "outbox": [{"event_id": "e0", "queued_at": first}], "outbox_pending_since": first})
    assert store.apply_change("C-YT-20261128-000001", 0, {"status": "acknowledged"}, outbox=[{"event_id": "e1", "queued_at": added}],
                              pending_since=first) is True
    store.clear_outbox("C-YT-20261128-000001", ["e0"])  # what its publisher had read, all of it published
    left = store.get_case("C-YT-20261128-000001")
    assert ([e["event_id"] for e in left["outbox"]], left["outbox_pending_since"]) == (["e1"], added)


def test_a_case_without_an_outbox_field_is_cleared_without_error(store):
    record = {**case(version=0), "timeline": [], "outbox_pending_since": NOW}
    store.insert_case(record)
    store.clear_outbox(record["_id"], ["e0"])
    cleared = store.get_case(record["_id"])
    assert (cleared["outbox"], cleared["outbox_pending_since"]) == ([], None)


def test_an_outbox_is_emptied_only_of_the_events_published(store):
    entries = [{"event_id": f"e{n}", "queued_at": NOW} for n in range(2)]
    store.insert_case({**case(version=0), "timeline": [], "outbox": entries, "outbox_pending_since": NOW})
    store.clear_outbox("C-YT-20261128-000001", ["e0", "e9"])  # same size, not the same events
    assert [e["event_id"] for e in store.get_case("C-YT-20261128-000001")["outbox"]] == ["e1"]


def test_a_request_is_merged_into_a_case_once_even_from_a_stale_read(store):
    record = {**case(version=0), "timeline": [], "outbox": []}
    store.insert_case(record)
    request = {"request_id": "r-2", "tracking_no": "YT-20261128-000002", "reporter": None}
    plan = cases.plan_merge(record, request, NOW)
    assert store.apply_change(record["_id"], 0, plan.changes, plan.timeline, (), plan.pushes, plan.guard) is True
    # the same merge planned again from a read that already shows version 1: refused by the guard
    replanned = cases.plan_merge(store.get_case(record["_id"]), request, NOW)
    assert store.apply_change(record["_id"], 1, replanned.changes, replanned.timeline, (), replanned.pushes, replanned.guard) is False
    stored = store.get_case(record["_id"])
    assert stored["request_ids"] == ["r-1", "r-2"] and stored["reporter_count"] == 2
