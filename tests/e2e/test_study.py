"""Study end to end: routing's registry, two study processes and notify, over RabbitMQ,
with a real HTTP peer standing in for the WeCom robot and the SMS gateway. Each call
carries the token of whoever makes it: the county administrator imports members, the
study editor writes contents and campaigns, grid workers record for their grids."""
import csv
import io
import json
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

import pytest
import requests

from devstack.demo_county import build_county
from tests.e2e.test_notify import load_registry, notifications, peer_env, quiet_window
from tests.support.peers import http_peer, smtp_peer
from tests.support.polling import eventually, once_registry_read
from tests.support.services import running_platform

COUNTY = build_county()
GRIDS = [grid for town in COUNTY["towns"] for community in town["communities"] for grid in community["grids"]]
# a grid name that a spreadsheet would run as a formula
FORMULA_NAME = '=HYPERLINK("http://evil.example","点我")'
GRIDS[7]["name"] = FORMULA_NAME
# GRIDS[1]: 南门社区 grid 02, whose worker and head are users of the test provider
WORKER, HEAD = "w-zc-nanmen-02-1", "w-zc-nanmen-02-h"
assert {WORKER, HEAD} == {GRIDS[1]["workers"][0]["id"], GRIDS[1]["head"]["id"]}


@pytest.fixture(scope="module")
def platform(module_amqp_uri, mongo_uri, tmp_path_factory):
    directory = tmp_path_factory.mktemp("study")
    with http_peer(directory) as http, smtp_peer(directory) as smtp:
        env = {**peer_env(http, smtp), **quiet_window(datetime.now(timezone.utc), timedelta(hours=2), timedelta(hours=1)),
               "STUDY_SCHEDULER_INTERVAL_SECONDS": "0.3", "STUDY_REPORT_INTERVAL_SECONDS": "0.5",
               "STUDY_MIN_REMINDER_HOURS": "0.001"}  # reminders within the test: 3.6 s after their round
        with running_platform(["routing", "notify"], amqp_uri=module_amqp_uri, mongo_uri=mongo_uri, log_dir=directory, extra_env=env) as first:
            routing = first["routing"][0]
            assert load_registry(routing, COUNTY).status_code == 200
            with running_platform(["study"], amqp_uri=module_amqp_uri, mongo_uri=mongo_uri, log_dir=directory, replicas={"study": 2},
                                  extra_env={**env, "ROUTING_URL": routing.base_url}) as second:
                studies = second["study"]
                members_csv = io.StringIO()
                writer = csv.writer(members_csv)
                writer.writerow(["member_id", "name", "grid_id", "kind", "phone"])
                for n, grid in enumerate(GRIDS[:50]):
                    writer.writerow([f"m-{n}-a", f"党员{n}甲", grid["id"], "party_member", f"1370000{n:04d}"])
                    writer.writerow([f"m-{n}-b", f"居民{n}乙", grid["id"], "resident", f"1371000{n:04d}"])
                imported = once_registry_read(lambda: studies[0].as_admin.post(
                    studies[0].url("/api/v1/members/import"), data=members_csv.getvalue().encode(), headers={"Content-Type": "text/csv"}, timeout=60))
                assert imported.status_code == 200, imported.text
                content = studies[0].as_user("editor").post(studies[0].url("/api/v1/contents"), timeout=10, json={
                    "title": "扎根基层，从小事做起", "body": "学习习近平新时代中国特色社会主义思想，为社区美丽建设出一份力。",
                    "tags": ["主题教育"], "team": "网格课堂宣讲队", "media": [{"type": "audio", "url": "https://example.org/lesson.mp3"}]})
                assert content.status_code == 201, content.text
                yield {"study": studies, "notify": first["notify"][0], "http": http, "content_id": content.json()["content_id"]}


def campaign_body(platform, grids, **overrides):
    return {
        "title": "网格课堂：主题教育学习", "content_ids": [platform["content_id"]],
        "target": {"scope": "grids", "ids": [grid["id"] for grid in grids]},
        "schedule": {"at": (datetime.now(timezone.utc) + timedelta(seconds=2)).isoformat()},
        "reminder": {"after_hours": 0.001, "max": 1},  # 3.6 s
        **overrides,
    }


def create_campaign(platform, grids, **overrides):
    response = editor(platform).post(study_url(platform, "/api/v1/campaigns"), json=campaign_body(platform, grids, **overrides), timeout=30)
    assert response.status_code == 201, response.text
    return response.json()["campaign_id"]


def editor(platform):
    return platform["study"][0].as_user("editor")


def study_url(platform, path, process=0):
    return platform["study"][process].url(path)


def group_notices(platform, campaign_id):
    return [n for n in notifications(platform, campaign_id=campaign_id, per_page=500) if n["kind"] == "campaign_due.grid_group"]


def report(platform, campaign_id, by="grid"):
    return editor(platform).get(study_url(platform, f"/api/v1/campaigns/{campaign_id}/report", 1), params={"by": by}, timeout=10).json()["rows"]


def check_in(platform, member, campaign_id, kind="read", principal="editor"):
    return platform["study"][0].as_user(principal).post(study_url(platform, "/api/v1/checkins"), timeout=10,
                                                         json={"campaign_id": campaign_id, "member_id": member, "kind": kind})


def import_members(platform, members, query=""):
    return platform["study"][0].as_admin.post(study_url(platform, f"/api/v1/members/import{query}"), json={"members": members}, timeout=30)


def test_campaign_to_fifty_grids_reaches_fifty_groups_once_with_two_study_processes(platform):
    campaign_id = create_campaign(platform, GRIDS[:50], reminder={"after_hours": 1, "max": 1})
    sent = eventually(lambda: (lambda found: found if len(found) >= 50 and all(n["status"] == "sent" for n in found) else None)(
        group_notices(platform, campaign_id)), timeout=60)
    assert len(sent) == 50
    assert {n["recipient"]["key"] for n in sent} == {f"group:{grid['wechat_groups'][0]}" for grid in GRIDS[:50]}
    posted = [r for r in platform["http"].received("/wecom") if "主题教育学习" in json.loads(r["body"])["text"]["content"]]
    assert len(posted) == 50
    assert "https://example.org/lesson.mp3" in json.loads(posted[0]["body"])["text"]["content"]
    # study records a round's dispatches once the broker has taken its events, so notify may be first
    eventually(lambda: {"kind": "campaign_due", "state": "published", "count": 50} in editor(platform).get(
        study_url(platform, f"/api/v1/campaigns/{campaign_id}"), timeout=10).json()["dispatches"])


def test_check_ins_move_the_rate_and_reminders_reach_only_those_who_did_not_take_part(platform):
    grids = GRIDS[:2]
    campaign_id = create_campaign(platform, grids)
    assert [row["rate"] for row in report(platform, campaign_id)] == [0.0, 0.0]

    assert check_in(platform, "m-0-a", campaign_id).status_code == 201
    assert check_in(platform, "m-0-a", campaign_id).status_code == 200  # idempotent per (campaign, member, kind)
    assert check_in(platform, "m-0-b", campaign_id, "commented").status_code == 201
    assert check_in(platform, "m-1-a", campaign_id, principal=WORKER).status_code == 201
    rows = report(platform, campaign_id)
    assert [(row["grid_id"], row["members"], row["participants"], row["rate"]) for row in rows] == [
        (grids[0]["id"], 2, 2, 1.0), (grids[1]["id"], 2, 1, 0.5)]
    assert report(platform, campaign_id, by="town")[0]["rate"] == 0.75

    reminded = eventually(lambda: [n for n in notifications(platform, campaign_id=campaign_id, per_page=500)
                                   if n["kind"] == "study_reminder_due.member" and n["status"] == "sent"], timeout=30)
    assert [n["recipient"]["key"] for n in reminded] == ["m-1-b"]
    missing = editor(platform).get(study_url(platform, f"/api/v1/campaigns/{campaign_id}/missing"), params={"grid_id": grids[1]["id"]}, timeout=10).json()
    assert [m["member_id"] for m in missing["members"]] == ["m-1-b"]

    csv_report = editor(platform).get(study_url(platform, f"/api/v1/campaigns/{campaign_id}/report"), params={"by": "grid", "format": "csv"}, timeout=10)
    assert csv_report.headers["Content-Type"].startswith("text/csv")
    assert [row["rate"] for row in csv.DictReader(io.StringIO(csv_report.text))] == ["1.0", "0.5"]


def test_session_attendance_counts_as_taking_part(platform):
    grid = GRIDS[2]
    campaign_id = create_campaign(platform, [grid], reminder={"after_hours": 1, "max": 0})
    study = platform["study"][1].as_user("editor")
    session = study.post(study_url(platform, "/api/v1/sessions", 1), timeout=10, json={
        "grid_id": grid["id"], "team": "葛岭镇网格课堂第1队", "kind": "bench", "held_at": datetime.now(timezone.utc).isoformat(),
        "campaign_id": campaign_id, "attendees": ["m-2-a"]})
    assert session.status_code == 201, session.text
    assert report(platform, campaign_id)[0]["participants"] == 1
    assert roll(platform, campaign_id, grid["id"]) == ([("m-2-a", ["attended"])], ["m-2-b"])
    more = study.post(study_url(platform, f"/api/v1/sessions/{session.json()['_id']}/attendance", 1), data="member_id\nm-2-b\n".encode(),
                      headers={"Content-Type": "text/csv"}, timeout=10)
    assert more.status_code == 200, more.text
    assert report(platform, campaign_id)[0]["rate"] == 1.0
    assert roll(platform, campaign_id, grid["id"]) == ([("m-2-a", ["attended"]), ("m-2-b", ["attended"])], [])
    teams = study.get(study_url(platform, "/api/v1/teams/report", 1), timeout=10).json()["teams"]
    assert {"team": "葛岭镇网格课堂第1队", "sessions": 1, "attendance": 2, "kinds": ["bench"]} in teams


def roll(platform, campaign_id, grid_id):
    """The grid's community lead's view of it (南门社区's grids): who took part (and how), and the 不掉队 list."""
    lead = platform["study"][0].as_user("lead-zc-nanmen")
    taken = lead.get(study_url(platform, f"/api/v1/campaigns/{campaign_id}/participants"), params={"grid_id": grid_id}, timeout=10)
    missing = lead.get(study_url(platform, f"/api/v1/campaigns/{campaign_id}/missing"), params={"grid_id": grid_id}, timeout=10)
    assert taken.status_code == missing.status_code == 200, taken.text
    return [(m["member_id"], m["kinds"]) for m in taken.json()["members"]], [m["member_id"] for m in missing.json()["members"]]


def test_a_grids_participants_need_a_known_campaign_and_a_grid(platform):
    worker = platform["study"][0].as_user(WORKER)
    no_grid = worker.get(study_url(platform, "/api/v1/campaigns/CP-none/participants"), timeout=10)
    assert no_grid.status_code == 400 and "grid_id" in no_grid.json()["fields"]
    unknown = worker.get(study_url(platform, "/api/v1/campaigns/CP-none/participants"), params={"grid_id": GRIDS[1]["id"]}, timeout=10)
    assert unknown.status_code == 404 and unknown.json()["error"] == "not_found"


def test_bad_input_is_refused_and_leaves_nothing_behind(platform):
    study = editor(platform)
    bad_import = import_members(platform, [
        {"member_id": "new-1", "name": "新成员", "grid_id": GRIDS[0]["id"]},
        {"member_id": "new-2", "name": "新成员", "grid_id": "no-such-grid"}])
    assert bad_import.status_code == 400
    assert bad_import.json()["fields"] == {"members": {"1": {"grid_id": ["Unknown grid no-such-grid."]}}}
    campaign_id = create_campaign(platform, [GRIDS[0]], reminder={"after_hours": 1, "max": 0})
    refused = check_in(platform, "new-1", campaign_id)
    assert refused.status_code == 404  # the half of the import that was valid was not written either

    elsewhere = check_in(platform, "m-5-a", campaign_id)
    assert elsewhere.status_code == 409
    past = study.post(study_url(platform, "/api/v1/campaigns"), timeout=10, json={
        "title": "过去", "content_ids": [platform["content_id"]], "target": {"scope": "all"},
        "schedule": {"at": "2020-01-01T09:00:00+08:00"}})
    assert past.status_code == 400 and "schedule" in past.json()["fields"]
    unknown_town = study.post(study_url(platform, "/api/v1/campaigns"), timeout=10, json={
        "title": "未知乡镇", "content_ids": [platform["content_id"]], "target": {"scope": "towns", "ids": ["atlantis"]},
        "schedule": {"at": (datetime.now(timezone.utc) + timedelta(hours=1)).isoformat()}})
    assert unknown_town.status_code == 400 and "target" in unknown_town.json()["fields"]
    huge = study.post(study_url(platform, "/api/v1/contents"), data=b"{" + b" " * (2 * 1024 * 1024) + b"}",
                         headers={"Content-Type": "application/json"}, timeout=30)
    assert huge.status_code == 400 and "body" in huge.json()["fields"]


def test_content_edits_keep_earlier_versions(platform):
    study = editor(platform)
    created = study.post(study_url(platform, "/api/v1/contents"), json={"title": "初稿", "body": "第一版", "tags": ["板凳会"]}, timeout=10).json()
    revised = study.put(study_url(platform, f"/api/v1/contents/{created['content_id']}"), json={"title": "定稿", "body": "第二版", "tags": ["板凳会"]}, timeout=10).json()
    assert revised["version"] == 2 and revised["history"][0]["title"] == "初稿"
    tagged = study.get(study_url(platform, "/api/v1/contents"), params={"tag": "板凳会"}, timeout=10).json()["items"]
    assert [item["title"] for item in tagged] == ["定稿"]


def test_a_campaign_retried_with_the_same_idempotency_key_is_created_once_and_reaches_each_group_once(platform):
    grids = GRIDS[3:5]
    title = f"重试的学习任务 {uuid.uuid4().hex[:6]}"
    body = campaign_body(platform, grids, title=title, reminder={"after_hours": 1, "max": 0})
    key = {"Idempotency-Key": uuid.uuid4().hex}
    first = editor(platform).post(study_url(platform, "/api/v1/campaigns"), json=body, headers=key, timeout=30)
    again = editor(platform).post(study_url(platform, "/api/v1/campaigns", 1), json=body, headers=key, timeout=30)
    assert (first.status_code, again.status_code) == (201, 200), again.text
    assert again.json() == first.json()
    campaign_id = first.json()["campaign_id"]

    # the same retry reaching both processes at once
    raced_title = f"{title} 并发"
    raced_key = {"Idempotency-Key": uuid.uuid4().hex}
    with ThreadPoolExecutor(2) as pool:
        raced = list(pool.map(lambda study: study.as_user("editor").post(study.url("/api/v1/campaigns"), json={**body, "title": raced_title},
                                                                          headers=raced_key, timeout=30),
                              platform["study"]))
    assert sorted(r.status_code for r in raced) == [200, 201]
    assert raced[0].json()["campaign_id"] == raced[1].json()["campaign_id"]

    listed = editor(platform).get(study_url(platform, "/api/v1/campaigns"), timeout=10).json()["items"]
    assert [c["campaign_id"] for c in listed if c["title"] == title] == [campaign_id]
    assert len([c for c in listed if c["title"] == raced_title]) == 1
    sent = eventually(lambda: (lambda found: found if len(found) >= 2 and all(n["status"] == "sent" for n in found) else None)(
        group_notices(platform, campaign_id)), timeout=60)
    assert sorted(n["recipient"]["key"] for n in sent) == sorted(f"group:{grid['wechat_groups'][0]}" for grid in grids)


def test_a_session_retried_with_the_same_idempotency_key_is_recorded_once(platform):
    team = f"重试宣讲队 {uuid.uuid4().hex[:6]}"
    body = {"grid_id": GRIDS[6]["id"], "team": team, "kind": "courtyard", "held_at": datetime.now(timezone.utc).isoformat(),
            "attendees": ["m-6-a", "m-6-b"]}
    key = {"Idempotency-Key": f"session-{uuid.uuid4().hex}"}
    first = editor(platform).post(study_url(platform, "/api/v1/sessions"), json=body, headers=key, timeout=10)
    again = editor(platform).post(study_url(platform, "/api/v1/sessions", 1), json=body, headers=key, timeout=10)
    assert (first.status_code, again.status_code) == (201, 200), again.text
    assert again.json()["_id"] == first.json()["_id"] and "idempotency_key" not in again.json()
    teams = editor(platform).get(study_url(platform, "/api/v1/teams/report"), timeout=10).json()["teams"]
    assert {"team": team, "sessions": 1, "attendance": 2, "kinds": ["courtyard"]} in teams
    bad_key = editor(platform).post(study_url(platform, "/api/v1/sessions"), json=body, headers={"Idempotency-Key": "k" * 129}, timeout=10)
    assert bad_key.status_code == 400 and "Idempotency-Key" in bad_key.json()["fields"]


@pytest.mark.parametrize("schedule, reminder, field", [
    ({"rrule": "FREQ=SECONDLY"}, {"after_hours": 1, "max": 1}, ("schedule", "rrule")),
    ({"rrule": "FREQ=HOURLY;BYMINUTE=0,30"}, {"after_hours": 1, "max": 1}, ("schedule", "rrule")),
    ({"rrule": "FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30"}, {"after_hours": 1, "max": 1}, ("schedule", "rrule")),
    ({"at": "2099-01-01T09:00:00+08:00"}, {"after_hours": 0.0001, "max": 2}, ("reminder", "after_hours")),
], ids=["every second", "every half hour", "february 30th", "reminders seconds apart"])
def test_schedules_that_would_flood_or_stall_are_refused_naming_the_field(platform, schedule, reminder, field):
    study = platform["study"][0]
    refused = editor(platform).post(study.url("/api/v1/campaigns"), timeout=30, json=campaign_body(platform, GRIDS[:1], schedule=schedule, reminder=reminder))
    assert refused.status_code == 400, refused.text
    section, name = field
    problems = refused.json()["fields"][section][name]
    assert "at least" in problems[0] or "within 4 years" in problems[0]
    assert requests.get(study.url("/health"), timeout=10).status_code == 200


def test_grid_workers_and_heads_record_taking_part_only_in_their_own_grid(platform):
    own, other = GRIDS[1], GRIDS[0]
    campaign_id = create_campaign(platform, [other, own], reminder={"after_hours": 1, "max": 0})
    assert check_in(platform, "m-1-a", campaign_id, principal=WORKER).status_code == 201
    refused = check_in(platform, "m-0-a", campaign_id, principal=WORKER)
    assert refused.status_code == 403, refused.text
    assert refused.json()["grid_ids"] == [other["id"]] and "permission" not in refused.json()

    head = platform["study"][1].as_user(HEAD)
    session = {"team": "南门社区宣讲队", "kind": "courtyard", "held_at": datetime.now(timezone.utc).isoformat(), "campaign_id": campaign_id}
    held = head.post(study_url(platform, "/api/v1/sessions", 1), json={**session, "grid_id": own["id"], "attendees": ["m-1-b"]}, timeout=10)
    assert held.status_code == 201, held.text
    for body in ({**session, "grid_id": other["id"], "attendees": []}, {**session, "grid_id": own["id"], "attendees": ["m-0-b"]}):
        refused = head.post(study_url(platform, "/api/v1/sessions", 1), json=body, timeout=10)
        assert refused.status_code == 403 and refused.json()["grid_ids"] == [other["id"]], refused.text
    more = head.post(study_url(platform, f"/api/v1/sessions/{held.json()['_id']}/attendance", 1), json={"attendees": ["m-0-b"]}, timeout=10)
    assert more.status_code == 403

    # community leads record for the grids of the community they head, not another's
    assert check_in(platform, "m-1-b", campaign_id, principal="lead-zc-nanmen").status_code == 201
    elsewhere = check_in(platform, "m-1-a", campaign_id, kind="commented", principal="lead-cf-yuzhou")
    assert elsewhere.status_code == 403 and "permission" not in elsewhere.json()
    rows = {row["grid_id"]: row["participants"] for row in report(platform, campaign_id)}
    assert rows == {other["id"]: 0, own["id"]: 2}


def test_who_took_part_in_a_grid_is_seen_by_its_own_workers_and_leads_not_another_grids(platform):
    own, other = GRIDS[1], GRIDS[0]
    campaign_id = create_campaign(platform, [other, own], reminder={"after_hours": 1, "max": 0})
    assert check_in(platform, "m-0-a", campaign_id).status_code == 201
    for path in ("participants", "missing"):
        url = study_url(platform, f"/api/v1/campaigns/{campaign_id}/{path}")
        for principal, grid in ((WORKER, other), ("lead-cf-yuzhou", own)):
            refused = platform["study"][0].as_user(principal).get(url, params={"grid_id": grid["id"]}, timeout=10)
            assert refused.status_code == 403, (path, principal, refused.text)
            assert refused.json()["grid_ids"] == [grid["id"]] and "m-0" not in refused.text
        # a department is no study role for names of members at all
        department = platform["study"][0].as_user("dept-power").get(url, params={"grid_id": own["id"]}, timeout=10)
        assert department.status_code == 403 and department.json()["permission"] == "participation.read"
        for principal in (WORKER, "lead-zc-nanmen", "county-admin"):
            seen = platform["study"][0].as_user(principal).get(url, params={"grid_id": own["id"]}, timeout=10)
            assert seen.status_code == 200, (path, principal, seen.text)
    assert roll(platform, campaign_id, own["id"]) == ([], ["m-1-a", "m-1-b"])


def test_an_import_says_what_it_would_change_and_overwrites_only_when_told(platform):
    grid = GRIDS[60]  # no members yet
    members = [{"member_id": f"imp-{n}", "name": f"党员{n}", "grid_id": grid["id"], "kind": "party_member", "phone": f"1372000000{n}"} for n in range(3)]
    assert import_members(platform, members).json() == {"imported": 3, "created": 3, "changed": 0, "unchanged": 0}
    assert import_members(platform, members).json() == {"imported": 3, "created": 0, "changed": 0, "unchanged": 3}

    changed = [{**members[0], "phone": "13720009999"}, *members[1:], {**members[0], "member_id": "imp-new"}]
    refused = import_members(platform, changed)
    assert refused.status_code == 409, refused.text
    assert refused.json()["changes"] == 1
    assert refused.json()["conflicts"] == [{"member_id": "imp-0", "fields": ["phone"]}]
    assert "replace=true" in refused.json()["message"]
    campaign_id = create_campaign(platform, [grid], reminder={"after_hours": 1, "max": 0})
    missing = editor(platform).get(study_url(platform, f"/api/v1/campaigns/{campaign_id}/missing"), params={"grid_id": grid["id"]}, timeout=10)
    assert [m["member_id"] for m in missing.json()["members"]] == ["imp-0", "imp-1", "imp-2"]  # imp-new was not written

    replaced = import_members(platform, changed, "?replace=true")
    assert replaced.json() == {"imported": 4, "created": 1, "changed": 1, "unchanged": 2}


def test_a_csv_report_keeps_a_name_that_looks_like_a_formula_as_text(platform):
    campaign_id = create_campaign(platform, [GRIDS[7]], reminder={"after_hours": 1, "max": 0})
    exported = editor(platform).get(study_url(platform, f"/api/v1/campaigns/{campaign_id}/report"), params={"format": "csv"}, timeout=10)
    [row] = csv.DictReader(io.StringIO(exported.text))
    assert row["grid_name"] == "'" + FORMULA_NAME
    assert report(platform, campaign_id)[0]["grid_name"] == FORMULA_NAME  # the JSON report is data, not a spreadsheet
