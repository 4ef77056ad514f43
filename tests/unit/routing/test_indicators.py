"""The scorecard (考核指标): a month of cases with known answers, moved by routing's own
plans (acknowledge, resolve, follow-up, reopen, SLA breach and escalation, return and
re-dispatch, merge, reject), one deferred by hand (nothing defers yet), every figure
checked; then the same month read back from a real store."""
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from services.routing import cases, dispatch, follow_up, indicators, sla
from services.routing.access import Area
from services.routing.lifecycle import Actor, Move
from tests.unit.routing.factories import SLA_CONFIG, case as case_record, grid
from wangge.auth import Forbidden

COUNTY = ZoneInfo("Asia/Shanghai")
NOVEMBER = indicators.between(date(2026, 11, 1), date(2026, 11, 30), COUNTY)
POLICY = sla.policy_for(SLA_CONFIG, "street_lighting", False)
WORKER = Actor("G-1-w1", "grid_worker")
OTHER_WORKER = Actor("G-2-w1", "grid_worker")
CENTER = Actor("county-center", "county_center")
LEAD = {"id": "lead-nanmen", "name": "南门社区负责人"}


def at(day, hour, minute=0, month=11):
    """A moment on the county's clock."""
    return datetime(2026, month, day, hour, minute, tzinfo=COUNTY)


class Registry:
    """What an escalation reads of the registry: the community's head."""

    def community(self, community_id):
        return {"id": community_id, "head": LEAD}


def opened(case_id, when, grid_id="G-1", town_id="zhangcheng", assignee="G-1-w1"):
    record = case_record(
        _id=case_id, grid_id=grid_id, town_id=town_id, opened_at=when, updated_at=when, sla=sla.start_clocks(when, POLICY),
        assignee={"id": assignee, "name": "李梅", "role": "worker"}, resolved_at=None, closed_at=None, follow_up=None,
        return_count=0, returns=[], reporters=[], version=0,
    )
    record["timeline"] = [
        {"kind": "status", "from": None, "to": "received", "at": when, **cases.SYSTEM.recorded(), "note": None},
        {"kind": "status", "from": "received", "to": "assigned", "at": when, **cases.SYSTEM.recorded(), "note": None},
    ]
    return record


def applied(case, plan):
    """``case`` once ``plan`` is applied, as the store's update leaves it."""
    after = {**case, **plan.changes}
    after["timeline"] = [*case["timeline"], *plan.timeline]
    for field, value in plan.pushes.items():
        after[field] = [*case.get(field, []), value]
    return after


def moved(case, status, when, actor=WORKER, note=None):
    token = follow_up.issue(when, timedelta(days=14)) if status == "resolved" else None
    return applied(case, cases.plan_case_move(case, Move(status, actor, note), when, POLICY, token)), token


def resolved(case, when, actor=WORKER):
    case, token = moved(case, "resolved", when, actor)
    return case, token.token


def answered(case, token, when, solved, satisfaction):
    return applied(case, cases.plan_follow_up(case, follow_up.digest(token), solved, satisfaction, None, when, POLICY))


def ticked(case, when):
    return applied(case, cases.plan_sla_tick(case, when, POLICY, Registry()))


def deferred(case, until, when):
    """A lead extends the resolution deadline with a reason (延期): the clock runs to
    ``until``; ``deferral.original_due_at`` keeps the deadline the scorecard judges by."""
    original = case["sla"]["resolution"]["due_at"]
    clocks = {**case["sla"], "resolution": {**case["sla"]["resolution"], "due_at": until}}
    return {**case, "sla": clocks, "updated_at": when,
            "deferral": {"original_due_at": original, "until": until, "reason": "需协调供电公司更换变压器", "by": "lead-zhangcheng", "at": when}}


def november():
    """Each case's story, named by what it adds to November's figures."""
    month = {}

    # on time all the way, satisfied
    a = moved(opened("A", at(2, 9)), "acknowledged", at(2, 9, 30))[0]
    a, token = resolved(a, at(3, 10))
    month["A"] = answered(a, token, at(4, 9), solved=True, satisfaction=5)

    # first response missed: the breach escalates it to the community, which closes in time
    b = ticked(opened("B", at(5, 9)), at(5, 11))
    b = moved(b, "acknowledged", at(5, 12), Actor(LEAD["id"], "community_lead"))[0]
    b, token = resolved(b, at(10, 9), Actor(LEAD["id"], "community_lead"))
    month["B"] = answered(b, token, at(11, 9), solved=True, satisfaction=3)

    # reopened (返工) at follow-up, resolved again and closed by staff
    c = moved(opened("C", at(10, 9)), "acknowledged", at(10, 10))[0]
    c, token = resolved(c, at(11, 9))
    c = answered(c, token, at(12, 9), solved=False, satisfaction=2)
    c, _ = resolved(c, at(13, 9))
    month["C"] = moved(c, "closed", at(14, 9))[0]

    # returned as not theirs (退单) and sent to the grid beside it (改派); still open at its deadline
    d = applied(opened("D", at(15, 9)), dispatch.plan_return(opened("D", at(15, 9)), "wrong_grid", WORKER, "不属于本网格", at(15, 10)))
    target = dispatch.Target(grid=grid("G-2"), assignee={"id": "G-2-w1", "name": "王强", "role": "worker"})
    d = applied(d, dispatch.plan_dispatch(d, target, None, CENTER, None, at(15, 11), POLICY))
    month["D"] = moved(d, "acknowledged", at(15, 11, 30), OTHER_WORKER)[0]

    # deferred (延期) before its deadline of 23 November
    e = moved(opened("E", at(20, 9)), "acknowledged", at(20, 10))[0]
    month["E"] = deferred(e, at(10, 9, month=12), at(22, 9))

    # two more residents report the same thing (merged); open past its deadline
    f = moved(opened("F", at(25, 9)), "acknowledged", at(25, 9, 30))[0]
    for n, when in enumerate((at(25, 15), at(26, 8))):
        request = {"request_id": f"r-f{n}", "tracking_no": f"YT-F{n}", "reporter": None}
        f = applied(f, cases.plan_merge(f, request, when))
    month["F"] = f

    # opened in October, closed by the resident on 1 November
    g = moved(opened("G", at(30, 9, month=10)), "acknowledged", at(30, 10, month=10))[0]
    g, token = resolved(g, at(31, 20, month=10))
    month["G"] = answered(g, token, at(1, 10), solved=True, satisfaction=4)

    month["H"] = moved(opened("H", at(26, 9)), "rejected", at(26, 10), note="不属于受理范围")[0]

    # nobody has answered yet; due in December
    month["I"] = opened("I", at(29, 9))

    # opened ten minutes into November (16:10 UTC on 31 October); resolution missed, escalated, closed late
    late = moved(opened("L", at(1, 0, 10)), "acknowledged", at(1, 0, 30))[0]
    late = ticked(late, at(4, 0, 10))
    late, _ = resolved(late, at(6, 0, 10), Actor(LEAD["id"], "community_lead"))
    month["L"] = moved(late, "closed", at(7, 0, 10), Actor(LEAD["id"], "community_lead"))[0]

    # another town's case, on time
    j = moved(opened("J", at(3, 9), grid_id="G-9", town_id="chengfeng", assignee="G-9-w1"), "acknowledged", at(3, 9, 10),
              Actor("G-9-w1", "grid_worker"))[0]
    j, token = resolved(j, at(3, 15), Actor("G-9-w1", "grid_worker"))
    month["J"] = answered(j, token, at(4, 9), solved=True, satisfaction=5)

    # opened half an hour into December
    month["K"] = opened("K", at(1, 0, 30, month=12))
    return month


TOWN = {
    "town_id": "zhangcheng", "received": 9, "closed": 5, "due_to_close": 8, "deferred": 1, "due_closed": 5, "closed_on_time": 4,
    "first_responded_on_time": 7, "reopened": 1, "escalated": 2, "followed_up": 3, "answered": 4, "satisfied": 2,
    "dispatched": 9, "misdispatched": 1, "merged": 2, "rejected": 1, "handling_hours": 372.0,
    "closing_rate": 0.7143, "closed_on_time_rate": 0.5714, "first_response_on_time_rate": 0.7778, "rework_rate": 0.2,
    "escalation_rate": 0.2222, "follow_up_rate": 0.6, "satisfaction_rate": 0.5, "accurate_dispatch_rate": 0.8889,
    "average_handling_hours": 74.4,
}


def rows_by_key(rows, key):
    return {row[key]: row for row in rows}


def test_every_figure_of_a_town_for_a_month_of_known_cases():
    rows = rows_by_key(indicators.scorecard(november().values(), NOVEMBER, "town"), "town_id")
    assert rows["zhangcheng"] == TOWN
    assert rows["chengfeng"]["received"] == rows["chengfeng"]["closed_on_time"] == 1


def test_a_case_counts_in_the_grid_it_stands_in_now():
    rows = rows_by_key(indicators.scorecard(november().values(), NOVEMBER, "grid"), "grid_id")
    first, beside = rows["G-1"], rows["G-2"]
    assert (first["received"], first["due_to_close"], first["due_closed"], first["closing_rate"]) == (8, 7, 5, 0.8333)
    assert (first["closed_on_time_rate"], first["first_response_on_time_rate"], first["escalation_rate"]) == (0.6667, 0.75, 0.25)
    assert (first["dispatched"], first["misdispatched"], first["accurate_dispatch_rate"]) == (8, 0, 1.0)
    # the returned case is the other grid's now: due there, not closed, sent wrong at first
    assert (beside["received"], beside["due_to_close"], beside["due_closed"], beside["closing_rate"]) == (1, 1, 0, 0.0)
    assert beside["accurate_dispatch_rate"] == 0.0


def test_workers_rows_follow_who_holds_each_case():
    rows = rows_by_key(indicators.scorecard(november().values(), NOVEMBER, "worker"), "worker_id")
    # the community lead took over both escalated cases
    assert (rows["lead-nanmen"]["received"], rows["lead-nanmen"]["escalated"], rows["lead-nanmen"]["closed"]) == (2, 2, 2)
    assert rows["G-1-w1"]["received"] == 6
    assert rows["G-2-w1"]["misdispatched"] == 1


def test_a_case_of_no_department_counts_in_no_department_row():
    assert indicators.scorecard(november().values(), NOVEMBER, "department") == []


def test_a_month_without_cases_has_no_rows_and_rates_of_nothing_are_null():
    assert indicators.scorecard([], NOVEMBER, "grid") == []
    empty = indicators.with_rates(dict.fromkeys(indicators.COUNTS, 0))
    assert all(empty[rate] is None for rate in indicators.RATES)


def test_periods_are_whole_days_on_the_county_clock():
    assert NOVEMBER.start == datetime(2026, 10, 31, 16, 0, tzinfo=ZoneInfo("UTC"))
    assert indicators.period_containing("week", date(2026, 11, 26), COUNTY).first_day == date(2026, 11, 23)
    quarter = indicators.period_containing("quarter", date(2026, 11, 26), COUNTY)
    assert (quarter.first_day, quarter.last_day) == (date(2026, 10, 1), date(2026, 12, 31))
    assert indicators.period_containing("month", date(2026, 12, 5), COUNTY).last_day == date(2026, 12, 31)
    assert indicators.period_containing("day", date(2026, 11, 26), COUNTY).end == at(27, 0)


def test_each_caller_reads_the_rows_of_their_own_area_only():
    town_lead = Area(town_ids=frozenset({"zhangcheng"}))
    worker = Area(grid_ids=frozenset({"G-1"}))
    assert indicators.case_filters_for(Area(everywhere=True), "town") == [{}]
    assert indicators.case_filters_for(town_lead, "grid") == [{"town_id": {"$in": ["zhangcheng"]}}]
    assert indicators.case_filters_for(worker, "worker") == [{"grid_id": {"$in": ["G-1"]}}]
    with pytest.raises(Forbidden):
        indicators.case_filters_for(worker, "town")
    grids = {"G-1": grid("G-1"), "G-9": grid("G-9", town_id="chengfeng", community_id="cf-yuzhou")}
    assert indicators.row_in_scope("grid", "G-1", town_lead, grids)
    assert not indicators.row_in_scope("grid", "G-9", town_lead, grids)
    assert indicators.row_in_scope("community", "zc-nanmen", town_lead, grids)
    assert not indicators.row_in_scope("town", "chengfeng", worker, grids)


def test_care_figures_join_the_rows_and_rows_of_theirs_in_scope_are_added():
    rows = [{"grid_id": "G-1", "received": 3}]
    care = [{"grid_id": "G-1", "visits_due": 4, "visits_on_time": 3}, {"grid_id": "G-2", "visits_due": 2, "visits_on_time": 2},
            {"grid_id": "G-9", "visits_due": 5, "visits_on_time": 0}]
    merged = indicators.merge_figures(rows, "grid", care, indicators.CARE_FIGURES, "visit_rate", lambda key: key != "G-9")
    assert merged[0] == {"grid_id": "G-1", "received": 3, "visits_due": 4, "visits_on_time": 3, "visit_rate": 0.75}
    assert [row["grid_id"] for row in merged] == ["G-1", "G-2"]
    assert (merged[1]["received"], merged[1]["closing_rate"], merged[1]["visit_rate"]) == (0, None, 1.0)


def test_study_participation_sums_the_campaigns_reports():
    reports = [[{"town_id": "zhangcheng", "members": 10, "participants": 6}], [{"town_id": "zhangcheng", "members": 10, "participants": 9}]]
    assert indicators.study_rows(reports, "town") == [{"town_id": "zhangcheng", "study_members": 20, "study_participants": 15}]


def test_csv_has_a_header_and_one_line_a_row():
    rows = indicators.scorecard(november().values(), NOVEMBER, "town")
    lines = indicators.as_csv("town", rows).splitlines()
    assert lines[0].split(",")[:3] == ["town_id", "received", "closed"]
    assert len(lines) == 1 + len(rows)
    assert lines[1 + [r["town_id"] for r in rows].index("zhangcheng")].startswith("zhangcheng,9,5,8,1,5,4,")


def test_gauges_list_every_town_of_the_registry():
    rows = indicators.scorecard(november().values(), NOVEMBER, "town")
    counts = indicators.town_counts(rows, ["zhangcheng", "chengfeng", "qingliang"])
    assert counts["qingliang"]["received"] == 0 and counts["zhangcheng"]["received"] == 9


# -- the same month in a real store -------------------------------------------------------

def test_the_store_finds_every_case_with_something_to_count(store):
    month = november()
    # untouched since October, due in October: nothing to count in November
    month["old"] = moved(opened("old", at(1, 9, month=10)), "acknowledged", at(1, 10, month=10))[0]
    store.cases.insert_many(list(month.values()))
    found = store.cases_for_period(NOVEMBER.start, NOVEMBER.end, indicators.CASE_FIELDS)
    assert "old" not in {case["_id"] for case in found}
    assert set("ABCDEFGHIJL") <= {case["_id"] for case in found}
    assert rows_by_key(indicators.scorecard(found, NOVEMBER, "town"), "town_id")["zhangcheng"] == TOWN


def test_the_store_reads_only_the_callers_area(store):
    store.cases.insert_many(list(november().values()))
    found = store.cases_for_period(NOVEMBER.start, NOVEMBER.end, indicators.CASE_FIELDS, [{"town_id": {"$in": ["chengfeng"]}}])
    assert {case["_id"] for case in found} == {"J"}
