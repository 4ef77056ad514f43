"""Study's operations over a real store (no broker; the grid directory is a stand-in)."""
import csv
import io
import json
import logging
import uuid
from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest
from pymongo import monitoring

from services.study import access, campaigns, workflow
from services.study.storage import StudyStore
from wangge.auth import Caller
from wangge.config import load_service_config
from wangge.mongo import connect

NOW = datetime(2026, 11, 28, 2, 0, tzinfo=timezone.utc)  # a Saturday, 10:00 in the county
COUNTY = timezone(timedelta(hours=8))
POLICY = campaigns.CampaignPolicy.from_config(load_service_config("study")["CAMPAIGNS"])
GRIDS = {grid_id: {"grid_id": grid_id, "name": grid_id, "town_id": "geling", "community_id": "fangguang", "wechat_groups": []}
         for grid_id in ("G-1", "G-2")}
# each grid's own record, as routing serves it: its head and workers
GRID_RECORDS = {grid_id: {**grid, "head": {"id": f"{grid_id}-head"}, "workers": [{"id": f"{grid_id}-worker"}]}
                for grid_id, grid in GRIDS.items()}
EDITOR = Caller("editor", frozenset({"study_editor"}))


class Directory:
    def grids(self):
        return GRIDS

    def grid(self, grid_id):
        return GRID_RECORDS.get(grid_id)


class Commands(monitoring.CommandListener):
    """The commands the store was sent, as (name, collection)."""

    def __init__(self):
        self.sent = []
        self.documents = []

    def started(self, event):
        self.sent.append((event.command_name, event.command.get(event.command_name)))
        self.documents.append(event.command)

    def succeeded(self, event):
        pass

    def failed(self, event):
        pass


@pytest.fixture
def commands():
    return Commands()


@pytest.fixture
def store(mongo_uri, commands):
    client = connect(mongo_uri, event_listeners=[commands])
    store = StudyStore(client[f"study_unit_{uuid.uuid4().hex[:8]}"])
    store.ensure_indexes()
    yield store
    client.close()


def content(store, **fields):
    return workflow.create_content(store, {"title": "主题教育", "body": "学习内容" * 50, "media": [], "tags": [], **fields}, NOW)


def campaign_body(content_id, schedule, **overrides):
    return {"title": "网格课堂", "content_ids": [content_id], "target": {"scope": "all", "ids": []}, "schedule": schedule,
            "reminder": {"after_hours": 24, "max": 0}, **overrides}


def create_campaign(store, schedule, key=None, **overrides):
    return workflow.create_campaign(store, Directory(), POLICY, campaign_body(content(store)["_id"], schedule, **overrides), NOW, key)


def members(store, count, grid_id="G-1"):
    rows = [{"member_id": f"{grid_id}-m{n}", "name": f"居民{n}", "grid_id": grid_id, "kind": "resident"} for n in range(count)]
    workflow.import_members(store, Directory(), rows, NOW)
    return [row["member_id"] for row in rows]


# -- rounds on the county's clock -------------------------------------------------------

CLAIM = timedelta(minutes=1)


def broker_takes_all(events_out):
    return set(range(len(events_out)))


def test_weekly_rounds_stay_at_nine_county_time_round_after_round_through_the_store(store):
    start = datetime(2026, 11, 28, 10, 0, tzinfo=COUNTY)
    campaign, created = create_campaign(store, {"rrule": "FREQ=WEEKLY;BYDAY=MO;BYHOUR=9;BYMINUTE=0", "start": start})
    assert created
    mondays_at_nine = [datetime(2026, 11, 30, 1, 0, tzinfo=timezone.utc) + timedelta(days=7 * n) for n in range(4)]
    assert store.get_campaign(campaign["_id"])["next_round_at"] == mondays_at_nine[0]
    for due_at, following in zip(mondays_at_nine, mondays_at_nine[1:]):
        rounds, outcomes = workflow.fan_out_due_rounds(store, POLICY, broker_takes_all, due_at, "c-1", due_at + CLAIM)
        material = store.dispatches.count_documents({"kind": "campaign_due", "round_due_at": due_at, "state": "published"})
        assert rounds == 1 and outcomes == Counter({("campaign_due", "published"): material}) and material > 0
        assert store.get_campaign(campaign["_id"])["next_round_at"] == following
    rounds = {d["round_due_at"] for d in store.dispatches.find({"campaign_id": campaign["_id"]})}
    assert sorted(rounds) == mondays_at_nine[:3]


def test_a_stored_rule_no_longer_accepted_ends_its_campaign_instead_of_stopping_the_others(store):
    campaign, _ = create_campaign(store, {"rrule": "FREQ=DAILY;BYHOUR=9;BYMINUTE=0"})
    store.campaigns.update_one({"_id": campaign["_id"]}, {"$set": {"schedule.rrule": "FREQ=SECONDLY"}})  # as an earlier release let in
    due_at = campaign["next_round_at"]
    assert workflow.fan_out_due_rounds(store, POLICY, broker_takes_all, due_at, "c-1", due_at + CLAIM)[0] == 1
    assert store.get_campaign(campaign["_id"])["next_round_at"] is None


def test_a_refused_schedule_or_reminder_stores_nothing(store):
    with pytest.raises(campaigns.CampaignRejected) as raised:
        create_campaign(store, {"rrule": "FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30"})
    assert "rrule" in raised.value.fields["schedule"]
    with pytest.raises(campaigns.CampaignRejected) as raised:
        create_campaign(store, {"at": NOW + timedelta(hours=1)}, reminder={"after_hours": 0.0001, "max": 2})
    assert "after_hours" in raised.value.fields["reminder"]
    assert store.list_campaigns() == []


# -- the same Idempotency-Key, the same campaign or session --------------------------------

def test_a_campaign_retried_with_the_same_key_is_created_once(store):
    schedule = {"at": NOW + timedelta(hours=1)}
    first, created = create_campaign(store, schedule, key="retry-1")
    again, created_again = create_campaign(store, schedule, key="retry-1")
    assert (created, created_again) == (True, False)
    assert again["_id"] == first["_id"]
    other, _ = create_campaign(store, schedule, key="retry-2")
    unkeyed = [create_campaign(store, schedule)[0]["_id"] for _ in range(2)]
    assert len({first["_id"], other["_id"], *unkeyed}) == 4
    assert len(store.list_campaigns()) == 4


def test_a_key_taken_by_a_concurrent_request_is_reported_not_raised(store):
    first, _ = create_campaign(store, {"at": NOW + timedelta(hours=1)}, key="race")
    assert store.insert_campaign({**first, "_id": "CP-loser"}) is None
    assert store.insert_session({"_id": "SS-1", "idempotency_key": "race", "attendees": []}) is not None
    assert store.insert_session({"_id": "SS-2", "idempotency_key": "race", "attendees": []}) is None


def test_a_session_retried_with_the_same_key_is_recorded_once_and_its_attendance_counted(store):
    member_ids = members(store, 3)
    campaign, _ = create_campaign(store, {"at": NOW + timedelta(hours=1)})
    body = {"grid_id": "G-1", "team": "宣讲队", "kind": "bench", "held_at": NOW, "campaign_id": campaign["_id"], "attendees": member_ids}
    session, created = workflow.record_session(store, Directory(), EDITOR, body, NOW, "meeting-1")
    # the first request stopped after storing the session, before counting its attendance
    store.participation.delete_many({"campaign_id": campaign["_id"]})
    again, created_again = workflow.record_session(store, Directory(), EDITOR, body, NOW, "meeting-1")
    assert (created, created_again) == (True, False)
    assert again["_id"] == session["_id"]
    assert store.sessions.count_documents({}) == 1
    assert store.participants_of(campaign["_id"], "G-1") == set(member_ids)


def test_a_grids_participants_say_how_and_when_first_they_took_part_and_the_rest_are_the_missing(store):
    g1, g2 = members(store, 3), members(store, 1, grid_id="G-2")
    campaign, _ = create_campaign(store, {"at": NOW + timedelta(hours=1)})

    def record(member_id, kind, at):
        workflow.check_in(store, Directory(), EDITOR, {"campaign_id": campaign["_id"], "member_id": member_id, "kind": kind}, at)

    record(g1[1], "commented", NOW + timedelta(hours=3))
    record(g1[0], "read", NOW + timedelta(hours=2))
    workflow.record_session(store, Directory(), EDITOR, {"grid_id": "G-1", "team": "宣讲队", "kind": "bench", "held_at": NOW,
                                                        "campaign_id": campaign["_id"], "attendees": [g1[0]]}, NOW + timedelta(hours=1))
    record(g2[0], "read", NOW)

    found = workflow.participants(store, campaign, "G-1")
    assert [(m["_id"], m["kinds"], m["first_at"]) for m in found] == [
        (g1[0], ["attended", "read"], NOW + timedelta(hours=1)), (g1[1], ["commented"], NOW + timedelta(hours=3))]
    assert [m["_id"] for m in workflow.missing(store, campaign, "G-1")] == [g1[2]]
    assert [m["_id"] for m in workflow.participants(store, campaign, "G-2")] == g2


# -- content versions -------------------------------------------------------------------

def test_earlier_versions_live_in_their_own_collection_not_in_the_content(store):
    created = content(store, title="初稿", body="第一版")
    for n, title in enumerate(["二稿", "定稿"], start=2):
        revised = workflow.revise_content(store, created["_id"], {"title": title, "body": f"第{n}版", "media": [], "tags": []}, NOW)
        assert revised["version"] == n
    assert "history" not in store.contents.find_one({"_id": created["_id"]})
    assert store.content_versions.count_documents({"content_id": created["_id"]}) == 2
    history = workflow.content_with_history(store, created["_id"])["history"]
    assert [(v["version"], v["title"], v["body"]) for v in history] == [(1, "初稿", "第一版"), (2, "二稿", "第2版")]


def test_a_dispatch_loads_a_summary_of_each_content_not_its_body_or_history(store):
    created = content(store, body="学" * 50_000)
    workflow.revise_content(store, created["_id"], {"title": "定稿", "body": "习" * 50_000, "media": [], "tags": []}, NOW)
    loaded = store.contents_for_dispatch([created["_id"]], workflow.SUMMARY_CHARS)[created["_id"]]
    assert loaded["summary"] == "习" * workflow.SUMMARY_CHARS
    assert set(loaded) == {"_id", "version", "title", "media", "summary"}


def test_versions_kept_inside_contents_by_an_earlier_release_move_out_at_start(store):
    legacy = {"_id": "CT-legacy", "version": 3, "title": "三稿", "body": "第三版", "media": [], "tags": [], "updated_at": NOW,
              "history": [{"version": 1, "title": "初稿", "body": "第一版", "updated_at": NOW},
                          {"version": 2, "title": "二稿", "body": "第二版", "updated_at": NOW}]}
    store.contents.insert_one(legacy)
    store.ensure_indexes()
    store.ensure_indexes()  # every process does it at start
    assert "history" not in store.contents.find_one({"_id": "CT-legacy"})
    assert [v["title"] for v in workflow.content_with_history(store, "CT-legacy")["history"]] == ["初稿", "二稿"]
    assert {"content_version", "_id_"} <= set(store.content_versions.index_information())


# -- attendance in one batch ----------------------------------------------------------------

def test_attendance_of_many_members_is_stored_in_one_batch_and_counted_once(store, commands):
    member_ids = members(store, 300)
    campaign, _ = create_campaign(store, {"at": NOW + timedelta(hours=1)})
    session, _ = workflow.record_session(store, Directory(), EDITOR, {"grid_id": "G-1", "team": "宣讲队", "kind": "courtyard", "held_at": NOW,
                                                                      "campaign_id": campaign["_id"], "attendees": member_ids[:50]}, NOW)
    commands.sent.clear()
    workflow.add_attendance(store, Directory(), EDITOR, session["_id"], member_ids, NOW)
    assert commands.sent.count(("insert", "participation")) == 1
    workflow.add_attendance(store, Directory(), EDITOR, session["_id"], member_ids, NOW)  # the same list again
    assert store.participation.count_documents({"campaign_id": campaign["_id"]}) == 300
    assert len(store.get_session(session["_id"])["attendees"]) == 300


# -- members imported again -------------------------------------------------------------------

def member_rows(*changes, count=3):
    rows = [{"member_id": f"m-{n}", "name": f"居民{n}", "grid_id": "G-1", "kind": "resident", "phone": f"1370000000{n}"} for n in range(count)]
    for index, change in changes:
        rows[index] = {**rows[index], **change}
    return rows


def test_importing_the_same_members_again_changes_nothing(store):
    assert workflow.import_members(store, Directory(), member_rows(), NOW) == {"imported": 3, "created": 3, "changed": 0, "unchanged": 0}
    assert workflow.import_members(store, Directory(), member_rows(), NOW) == {"imported": 3, "created": 0, "changed": 0, "unchanged": 3}


def test_an_import_that_would_change_stored_members_is_refused_naming_them_unless_it_says_replace(store):
    workflow.import_members(store, Directory(), member_rows(), NOW)
    changed = member_rows((0, {"phone": "13799999999"}), (1, {"grid_id": "G-2", "name": "另一个人"}), count=4)
    with pytest.raises(workflow.MembersWouldChange) as refused:
        workflow.import_members(store, Directory(), changed, NOW)
    assert refused.value.http_status == 409
    assert refused.value.details == {"changes": 2, "conflicts": [
        {"member_id": "m-0", "fields": ["phone"]}, {"member_id": "m-1", "fields": ["name", "grid_id"]}]}
    assert "13799999999" not in str(refused.value.details)
    stored = store.members_by_ids(["m-0", "m-1", "m-3"])
    assert (stored["m-0"]["phone"], stored["m-1"]["grid_id"], "m-3" in stored) == ("13700000000", "G-1", False)  # nothing written

    counts = workflow.import_members(store, Directory(), changed, NOW, replace=True)
    assert counts == {"imported": 4, "created": 1, "changed": 2, "unchanged": 1}
    stored = store.members_by_ids(["m-0", "m-1", "m-3"])
    assert (stored["m-0"]["phone"], stored["m-1"]["grid_id"], "m-3" in stored) == ("13799999999", "G-2", True)


# -- who records taking part for whom -----------------------------------------------------------

def caller(subject, *roles):
    return Caller(subject, frozenset(roles))


@pytest.mark.parametrize("who", [caller("G-1-worker", "grid_worker"), caller("G-1-head", "grid_head"), EDITOR,
                                 caller("county-admin", "county_admin")], ids=["worker", "head", "editor", "admin"])
def test_grid_workers_and_heads_record_for_their_own_grid_editors_anywhere(store, who):
    member_id = members(store, 1, "G-1")[0]
    campaign, _ = create_campaign(store, {"at": NOW + timedelta(hours=1)})
    assert workflow.check_in(store, Directory(), who, {"campaign_id": campaign["_id"], "member_id": member_id, "kind": "read"}, NOW)
    session, created = workflow.record_session(store, Directory(), who, {
        "grid_id": "G-1", "team": "宣讲队", "kind": "bench", "held_at": NOW, "campaign_id": campaign["_id"], "attendees": [member_id]}, NOW)
    assert created and workflow.add_attendance(store, Directory(), who, session["_id"], [member_id], NOW)["attendees"] == [member_id]


@pytest.mark.parametrize("who", [caller("G-1-worker", "grid_worker"), caller("G-1-head", "grid_head"),
                                 caller("G-1-worker", "study_reader"), caller("lead-fangguang", "community_lead"),
                                 caller("lead-geling", "town_lead")], ids=["worker", "head", "no grid role", "community lead", "town lead"])
def test_members_and_sessions_of_other_grids_are_refused_naming_the_grid(store, who):
    own, other = members(store, 1, "G-1")[0], members(store, 1, "G-2")[0]
    campaign, _ = create_campaign(store, {"at": NOW + timedelta(hours=1)})
    session = {"grid_id": "G-1", "team": "宣讲队", "kind": "bench", "held_at": NOW, "campaign_id": campaign["_id"]}
    earlier, _ = workflow.record_session(store, Directory(), EDITOR, {**session, "attendees": []}, NOW)
    attempts = [
        lambda: workflow.check_in(store, Directory(), who, {"campaign_id": campaign["_id"], "member_id": other, "kind": "read"}, NOW),
        lambda: workflow.record_session(store, Directory(), who, {**session, "grid_id": "G-2", "attendees": []}, NOW),
        lambda: workflow.record_session(store, Directory(), who, {**session, "attendees": [own, other]}, NOW),
        lambda: workflow.add_attendance(store, Directory(), who, earlier["_id"], [own, other], NOW),
    ]
    for attempt in attempts:
        with pytest.raises(access.OutsideYourGrids) as refused:
            attempt()
        assert "G-2" in refused.value.details["grid_ids"] and "grid_id" in refused.value.fields
    assert store.participants_of(campaign["_id"], "G-2") == set()
    assert store.sessions.count_documents({}) == 1 and store.get_session(earlier["_id"])["attendees"] == []


def test_a_session_key_of_another_grids_session_gives_nothing_away(store):
    session = {"grid_id": "G-2", "team": "宣讲队", "kind": "bench", "held_at": NOW, "attendees": []}
    workflow.record_session(store, Directory(), EDITOR, session, NOW, "meeting-of-g2")
    with pytest.raises(access.OutsideYourGrids):
        workflow.record_session(store, Directory(), caller("G-1-worker", "grid_worker"), {**session, "grid_id": "G-1"}, NOW, "meeting-of-g2")


# -- reports ----------------------------------------------------------------------------------------

def test_a_report_counts_each_grids_members_from_one_group_over_the_roster_not_a_match_on_its_grids(store, commands):
    members(store, 2, "G-1")
    members(store, 1, "G-2")
    campaign, _ = create_campaign(store, {"at": NOW + timedelta(hours=1)})
    commands.documents.clear()

    rows = workflow.report(store, campaign, "grid")

    assert {row["grid_id"]: row["members"] for row in rows} == {"G-1": 2, "G-2": 1}
    # SecantusDB answers a match on a county's 1,429 grid ids in seconds, holding up every other command
    reads = [command for command in commands.documents if command.get("aggregate") == "members"]
    assert reads and all("$in" not in str(command["pipeline"]) for command in reads)


# -- reports as spreadsheets ----------------------------------------------------------------------

def test_csv_cells_that_a_spreadsheet_would_run_as_formulas_are_kept_as_text():
    rows = [{"grid_id": grid_id, "grid_name": name, "members": 2, "rate": 0.5} for grid_id, name in [
        ("G-1", '=HYPERLINK("http://evil.example","点我")'), ("G-2", "+cmd|' /C calc'!A0"), ("G-3", "-2+3"),
        ("G-4", "@SUM(A1:A2)"), ("G-5", "\t=1+1"), ("G-6", "\r=1+1"), ("G-7", "南门社区第一网格"), ("G-8", "a=b")]]
    cells = [row["grid_name"] for row in csv.DictReader(io.StringIO(workflow.report_csv(rows)))]
    assert cells == ['\'=HYPERLINK("http://evil.example","点我")', "'+cmd|' /C calc'!A0", "'-2+3", "'@SUM(A1:A2)",
                     "'\t=1+1", "'\r=1+1", "南门社区第一网格", "a=b"]
    assert [row["rate"] for row in csv.DictReader(io.StringIO(workflow.report_csv(rows)))] == ["0.5"] * 8


def test_a_round_is_published_by_the_process_that_took_it_once_and_its_reminders_wait(store):
    campaign, _ = create_campaign(store, {"at": NOW + timedelta(hours=1)}, reminder={"after_hours": 24, "max": 1})
    due_at = store.get_campaign(campaign["_id"])["next_round_at"]
    published = []

    def publish(batch):
        published.extend(batch)
        return set(range(len(batch)))

    assert store.take_round(campaign["_id"], due_at, "other-process", due_at + CLAIM, due_at)
    assert workflow.fan_out_due_rounds(store, POLICY, publish, due_at, "c-1", due_at + CLAIM) == (0, Counter())
    assert published == [] and store.dispatches.count_documents({}) == 0  # the other process has the round

    later = due_at + CLAIM  # the other process went silent: its hold has run out
    rounds, outcomes = workflow.fan_out_due_rounds(store, POLICY, publish, later, "c-1", later + CLAIM)
    material = {d["_id"]: d["state"] for d in store.dispatches.find({"kind": "campaign_due"})}
    assert rounds == 1 and outcomes == Counter({("campaign_due", "published"): len(material)})
    assert sorted(event["event_id"] for _, event in published) == sorted(material)
    assert set(material.values()) == {"published"}
    assert {(d["state"], d["claim"]) for d in store.dispatches.find({"kind": "reminder"})} == {("pending", None)}
    assert workflow.publish_due(store, publish, later, "c-2", later + CLAIM, 10) == Counter()


def test_each_round_is_logged_once_with_what_the_broker_took_and_nobodys_name(store, caplog):
    members(store, 3)
    campaign, _ = create_campaign(store, {"at": NOW + timedelta(hours=1)})
    due_at = store.get_campaign(campaign["_id"])["next_round_at"]
    with caplog.at_level(logging.INFO, logger=workflow.__name__):
        workflow.fan_out_due_rounds(store, POLICY, lambda batch: set(range(len(batch) - 1)), due_at + timedelta(seconds=3), "c-1", due_at + CLAIM)
    rounds = [record for record in caplog.records if record.getMessage() == "campaign round fanned out"]
    assert len(rounds) == 1
    states = Counter(d["state"] for d in store.dispatches.find({"kind": "campaign_due"}))
    assert (rounds[0].campaign_id, rounds[0].taken_late_seconds) == (campaign["_id"], 3.0)
    assert (rounds[0].material_published, rounds[0].material_not_taken) == (states["published"], states["pending"]) and states["pending"] == 1
    assert rounds[0].dispatches == store.dispatches.count_documents({"campaign_id": campaign["_id"]})
    names = [member["name"] for member in store.members.find({}, {"name": 1})]
    assert names and not any(name in json.dumps(vars(rounds[0]), default=str, ensure_ascii=False) for name in names)


def test_material_the_broker_did_not_take_is_published_later_by_the_schedule(store):
    campaign, _ = create_campaign(store, {"at": NOW + timedelta(hours=1)})
    due_at = store.get_campaign(campaign["_id"])["next_round_at"]
    rounds, outcomes = workflow.fan_out_due_rounds(store, POLICY, lambda batch: set(), due_at, "c-1", due_at + CLAIM)
    assert rounds == 1 and outcomes == Counter({("campaign_due", "not_taken"): store.dispatches.count_documents({"kind": "campaign_due"})})
    assert {d["state"] for d in store.dispatches.find({"kind": "campaign_due"})} == {"pending"}
    outcomes = workflow.publish_due(store, broker_takes_all, due_at, "c-2", due_at + CLAIM, 10)
    assert outcomes[("campaign_due", "published")] == store.dispatches.count_documents({"kind": "campaign_due"}) > 0
