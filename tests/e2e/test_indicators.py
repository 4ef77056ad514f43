"""The scorecard (考核指标) with intake and routing as processes: a grid's figures move
when one of its cases is closed, the CSV form, who reads which rows, and care's
figures joined from a care service that answers (study left unconfigured)."""
import csv
import io

import pytest
import requests

from devstack.demo_county import build_county
from tests.support.json_server import JsonHandler, serving
from tests.support.polling import eventually
from tests.support.services import authorized_session, running_platform

COUNTY = build_county()
NANMEN = COUNTY["towns"][0]["communities"][0]
GRID = NANMEN["grids"][1]  # 南门 02: w-zc-nanmen-02-1 is its only worker on duty
WORKER, CENTER, OTHER_TOWN_LEAD = "w-zc-nanmen-02-1", "county-center", "lead-chengfeng"


class CareIndicators(JsonHandler):
    """Care's figures as the care service serves them, to routing's own client only."""

    def do_GET(self):
        if not self.headers.get("Authorization", "").startswith("Bearer "):
            self.answer_json(401, {"error": "unauthenticated"})
        elif self.path.startswith("/api/v1/care/indicators?") and "by=grid" in self.path:
            self.answer_json(200, {"rows": [{"grid_id": GRID["id"], "visits_due": 4, "visits_on_time": 3}]})
        else:
            self.answer_json(404, {"error": "not_found"})


@pytest.fixture(scope="module")
def platform(module_amqp_uri, mongo_uri, tmp_path_factory):
    with serving(CareIndicators) as care_url, running_platform(
            ["intake", "routing"], amqp_uri=module_amqp_uri, mongo_uri=mongo_uri, log_dir=tmp_path_factory.mktemp("logs"),
            extra_env={"CARE_URL": care_url, "STUDY_URL": ""}) as services:
        routing = services["routing"][0]
        assert routing.as_admin.put(routing.url("/api/v1/registry"), json=COUNTY, timeout=120).status_code == 200
        yield services["intake"][0], routing


def scorecard(routing, who, **params):
    answer = authorized_session(who).get(routing.url("/api/v1/indicators"), params={"period": "month", **params}, timeout=30)
    assert answer.status_code == 200, answer.text
    return answer


def grid_row(routing):
    rows = scorecard(routing, CENTER, by="grid").json()["rows"]
    return next(row for row in rows if row["grid_id"] == GRID["id"])  # care has figures for it: there from the start


def open_case(intake, routing, text):
    """A case in the grid; each test its own matter, so none is merged into another's."""
    filed = requests.post(intake.url("/api/v1/requests"), timeout=10,
                          json={"channel": "wechat_group", "text": text, "grid_id": GRID["id"]}).json()
    center = authorized_session(CENTER)

    def assigned():
        items = center.get(routing.url("/api/v1/cases"), params={"grid_id": GRID["id"], "per_page": 500}, timeout=10).json()["items"]
        return next((item["case_id"] for item in items if item["tracking_no"] == filed["tracking_no"] and item["status"] == "assigned"), None)

    return eventually(assigned, timeout=20)


def test_a_grids_figures_move_when_one_of_its_cases_is_closed(platform):
    intake, routing = platform
    before = grid_row(routing)
    case_id = open_case(intake, routing, "小区门口垃圾没人清运")
    opened = grid_row(routing)
    assert opened["received"] == before["received"] + 1
    worker = authorized_session(WORKER)
    for action, body in (("acknowledge", {}), ("resolve", {}), ("transitions", {"status": "closed"})):
        answer = worker.post(routing.url(f"/api/v1/cases/{case_id}/{action}"), json=body, timeout=10)
        assert answer.status_code == 200, answer.text
    closed = grid_row(routing)
    assert closed["closed"] == opened["closed"] + 1
    assert closed["due_closed"] == opened["due_closed"] + 1 and closed["closed_on_time"] == opened["closed_on_time"] + 1
    assert closed["closing_rate"] is not None and closed["first_response_on_time_rate"] is not None
    # care answered for the grid; study is not configured, and the answer says so
    assert (closed["visits_due"], closed["visits_on_time"], closed["visit_rate"]) == (4, 3, 0.75)
    notes = scorecard(routing, CENTER, by="grid").json()["notes"]
    assert any(note.startswith("study: not configured") for note in notes)


def test_the_scorecard_as_csv_has_a_header_and_a_row_per_grid(platform):
    intake, routing = platform
    open_case(intake, routing, "小区门口的路灯坏了晚上很黑")
    answer = scorecard(routing, CENTER, by="grid", format="csv")
    assert answer.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    assert list(rows[0])[:3] == ["grid_id", "received", "closed"]
    assert int(next(row for row in rows if row["grid_id"] == GRID["id"])["received"]) >= 1


def test_a_grid_worker_reads_their_own_grids_and_no_other_towns_rows(platform):
    intake, routing = platform
    open_case(intake, routing, "下水道堵了污水漫到路上")
    own = scorecard(routing, WORKER, by="grid").json()["rows"]
    assert [row["grid_id"] for row in own] == [GRID["id"]]
    wider = authorized_session(WORKER).get(routing.url("/api/v1/indicators"), params={"by": "town", "period": "month"}, timeout=10)
    assert wider.status_code == 403, wider.text
    # the lead of another town reads that town's grids only
    theirs = scorecard(routing, OTHER_TOWN_LEAD, by="grid").json()["rows"]
    assert GRID["id"] not in {row["grid_id"] for row in theirs}
    assert [row["town_id"] for row in scorecard(routing, OTHER_TOWN_LEAD, by="town").json()["rows"]] in ([], ["chengfeng"])


def test_a_period_named_twice_is_refused(platform):
    _, routing = platform
    answer = authorized_session(CENTER).get(routing.url("/api/v1/indicators"), timeout=10,
                                            params={"by": "grid", "period": "month", "from": "2026-11-01", "to": "2026-11-30"})
    assert answer.status_code == 400
    assert "period" in answer.json()["fields"]
