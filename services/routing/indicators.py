"""The scorecard (考核指标): what each grid, community, town, department and worker
did in a period, computed from the cases as they stand.

A period is whole days on the county's clock, ``[start, end)``. Each case counts
in a period by the moment a figure names (received: ``opened_at``; closed:
``closed_at``; due: when it settled, see :func:`settled_at`), and in the row of
the level's holder as the case stands now (its grid, community, town, department
or assignee). Counts come first; every rate is a ratio of two counts, ``None``
when its denominator is 0, so sums of rows (and Prometheus) give rates of any
wider area. The README's "Scorecard: 考核指标" section states each formula.

Deferral (延期): a case whose resolution deadline a lead extended carries
``deferral.original_due_at``, the deadline before the extension (its SLA clock
runs to the new one). It is left out of the closing rates of the period its
original deadline fell in and counted there as ``deferred``.
"""
import csv
import io
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from wangge.auth import Forbidden

LEVELS = ("grid", "community", "town", "department", "worker")
KEYS = {level: f"{level}_id" for level in LEVELS}
PERIODS = ("day", "week", "month", "quarter")
MAX_DAYS = 366

# What a row counts; every rate below is a ratio of two of these.
COUNTS = (
    "received", "closed", "due_to_close", "deferred", "due_closed", "closed_on_time", "first_responded_on_time",
    "reopened", "escalated", "followed_up", "answered", "satisfied", "dispatched", "misdispatched", "merged",
    "rejected", "handling_hours",
)
SATISFIED_FROM = 4
RATES = (
    "closing_rate", "closed_on_time_rate", "first_response_on_time_rate", "rework_rate", "escalation_rate",
    "follow_up_rate", "satisfaction_rate", "accurate_dispatch_rate", "average_handling_hours",
)
# Of each case, what the figures read (the store fetches no more).
CASE_FIELDS = (
    "status", "opened_at", "first_response_at", "resolved_at", "closed_at", "sla.resolution.due_at", "follow_up.at",
    "follow_up.satisfaction", "deferral.original_due_at", "return_count", "grid_id", "community_id", "town_id",
    "department.id", "assignee.id", "timeline.kind", "timeline.to", "timeline.at", "timeline.clock", "timeline.to_subclass",
)


@dataclass(frozen=True)
class Period:
    first_day: date
    last_day: date
    start: datetime  # the first day's midnight on the county's clock
    end: datetime  # the midnight after the last day

    def holds(self, moment):
        return moment is not None and self.start <= moment < self.end


def between(first_day, last_day, zone):
    """The days ``first_day`` to ``last_day`` (both included) on the clock of ``zone``."""
    if last_day < first_day:
        raise ValueError("The period ends before it starts.")
    if (last_day - first_day).days >= MAX_DAYS:
        raise ValueError(f"A period is at most {MAX_DAYS} days.")
    return Period(first_day, last_day, datetime.combine(first_day, time(), zone),
                  datetime.combine(last_day + timedelta(days=1), time(), zone))


def period_containing(kind, day, zone):
    """The day, week (Monday first), month or quarter that holds ``day``."""
    if kind == "day":
        return between(day, day, zone)
    if kind == "week":
        monday = day - timedelta(days=day.weekday())
        return between(monday, monday + timedelta(days=6), zone)
    months = 1 if kind == "month" else 3
    first_month = day.month if kind == "month" else 3 * ((day.month - 1) // 3) + 1
    first = date(day.year, first_month, 1)
    following = date(first.year + (first.month + months - 1) // 12, (first.month + months - 1) % 12 + 1, 1)
    return between(first, following - timedelta(days=1), zone)


def period_named(query, now, zone):
    """The period of the endpoint's query: ``from`` and ``to``, or ``period`` holding ``at`` (today by default)."""
    if "period" in query:
        return period_containing(query["period"], query.get("at") or now.astimezone(zone).date(), zone)
    return between(query["from_"], query["to"], zone)


# -- who may read which rows -----------------------------------------------------

# The levels each part of a caller's area reaches: a town lead reads their town and
# everything in it, a grid worker their grids and the people working them.
LEVELS_OF_AREA = {
    "town_ids": ("town", "community", "grid", "worker", "department"),
    "community_ids": ("community", "grid", "worker"),
    "grid_ids": ("grid", "worker"),
    "department_ids": ("department",),
}
CASE_FIELD_OF_AREA = {"town_ids": "town_id", "community_ids": "community_id", "grid_ids": "grid_id", "department_ids": "department.id"}


def case_filters_for(area, by):
    """Store filters (one field each) for the cases whose rows at level ``by`` the caller
    (``area``, an ``access.Area``) may read, or ``Forbidden`` when the level is wider than
    their area: a grid worker reads no town's row."""
    if area.everywhere:
        return [{}]
    filters = [{CASE_FIELD_OF_AREA[part]: {"$in": sorted(getattr(area, part))}}
               for part, levels in LEVELS_OF_AREA.items() if by in levels and getattr(area, part)]
    if not filters:
        raise Forbidden(f"Your area holds no {by} rows of the scorecard.",
                        {"by": [f"Your roles read: {', '.join(readable_levels(area)) or 'none'}."]})
    return filters


def readable_levels(area):
    if area.everywhere:
        return LEVELS
    return tuple(level for level in LEVELS if any(level in levels and getattr(area, part) for part, levels in LEVELS_OF_AREA.items()))


def row_in_scope(by, key, area, grids):
    """Whether a row of another service (care, study) keyed ``key`` at level ``by``
    is the caller's to read; ``grids``: the registry's grid records by id."""
    if area.everywhere:
        return True
    if by == "town":
        return key in area.town_ids
    if by == "community":
        return key in area.community_ids or any(g["community_id"] == key and g["town_id"] in area.town_ids for g in grids.values())
    grid = grids.get(key)
    return grid is not None and (key in area.grid_ids or grid["community_id"] in area.community_ids or grid["town_id"] in area.town_ids)


# -- one case's part in a period -------------------------------------------------

def holder(case, by):
    """The id of the row at level ``by`` that ``case`` counts in (``None``: in none)."""
    if by == "department":
        return (case.get("department") or {}).get("id")
    if by == "worker":
        return (case.get("assignee") or {}).get("id")
    return case.get(KEYS[by])


def deadline(case):
    """The resolution deadline a case is judged by: the first one, if a lead deferred it."""
    deferral = case.get("deferral") or {}
    return deferral.get("original_due_at") or ((case.get("sla") or {}).get("resolution") or {}).get("due_at")


def settled_at(case):
    """When a case fell due to close (应结案): at its deadline, or when it was closed if
    that came first. ``None`` for a rejected case (nothing to close) or one without a deadline."""
    due = deadline(case)
    if case.get("status") == "rejected" or due is None:
        return None
    closed = case.get("closed_at")
    return min(closed, due) if closed is not None else due


def entries(case, kind, to=None):
    return [e for e in case.get("timeline") or () if e.get("kind") == kind and (to is None or e.get("to") == to)]


def breached(case, clock, before=None):
    """Whether the timer recorded a breach of ``clock`` (before ``before``, if given)."""
    return any(e.get("clock") == clock and (before is None or e["at"] <= before) for e in entries(case, "sla_breach"))


def closed_on_time(case):
    """Resolved by its deadline and its resolution clock never breached (a breach escalates
    and starts a fresh clock: the fresh one does not make it on time)."""
    due = deadline(case)
    return case.get("closed_at") is not None and case.get("resolved_at") is not None and due is not None \
        and case["resolved_at"] <= due and not breached(case, "resolution")


def first_responded_on_time(case):
    answered = case.get("first_response_at")
    return answered is not None and not breached(case, "first_response", before=answered)


def dispatched(case):
    """It reached a holder: assigned on arrival, or placed, assigned or dispatched later."""
    return any(e.get("to") == "assigned" for e in case.get("timeline") or ())


def misdispatched(case):
    """Sent to the wrong holder: returned as not theirs (退单), or sent on again in another
    class after it had reached a holder (改派 with a correction)."""
    if case.get("return_count"):
        return True
    reached = False
    for entry in case.get("timeline") or ():
        if entry.get("kind") == "dispatch" and reached and entry.get("to_subclass"):
            return True
        reached = reached or entry.get("to") == "assigned"
    return False


def followed_up(case):
    """The resident answered the follow-up of its last resolution (回访)."""
    answer_at = (case.get("follow_up") or {}).get("at")
    return answer_at is not None and case.get("resolved_at") is not None and answer_at >= case["resolved_at"]


def case_counts(case, period):
    """What ``case`` adds to its row's counts in ``period``."""
    counts = dict.fromkeys(COUNTS, 0)
    received = period.holds(case.get("opened_at"))
    closed = period.holds(case.get("closed_at"))
    if received:
        counts["received"] = 1
        counts["first_responded_on_time"] = int(first_responded_on_time(case))
        counts["escalated"] = int(bool(entries(case, "escalation")))
        counts["dispatched"] = int(dispatched(case))
        counts["misdispatched"] = int(counts["dispatched"] and misdispatched(case))
    if closed:
        counts["closed"] = 1
        counts["followed_up"] = int(followed_up(case))
        # only a resolved case closes, and the resident's follow-up is not handling
        counts["handling_hours"] = (case["resolved_at"] - case["opened_at"]).total_seconds() / 3600
    if period.holds(settled_at(case)):
        counts["due_to_close"] = 1
        if case.get("deferral"):
            counts["deferred"] = 1
        elif case.get("closed_at") is not None and case["closed_at"] < period.end:
            counts["due_closed"] = 1
            counts["closed_on_time"] = int(closed_on_time(case))
    follow_up = case.get("follow_up") or {}
    if period.holds(follow_up.get("at")) and follow_up.get("satisfaction") is not None:
        counts["answered"] = 1
        counts["satisfied"] = int(follow_up["satisfaction"] >= SATISFIED_FROM)
    counts["reopened"] = int(any(period.holds(e.get("at")) for e in entries(case, "status", to="reopened")))
    counts["merged"] = sum(1 for e in entries(case, "merged_request") if period.holds(e.get("at")))
    counts["rejected"] = int(case.get("status") == "rejected"
                             and any(period.holds(e.get("at")) for e in entries(case, "status", to="rejected")))
    return counts


# -- rows ------------------------------------------------------------------------

def ratio(part, whole):
    return round(part / whole, 4) if whole else None


def with_rates(counts):
    """A row's counts with its rates."""
    row = {**counts, "handling_hours": round(counts["handling_hours"], 2)}
    closable = counts["due_to_close"] - counts["deferred"]
    row.update({
        "closing_rate": ratio(counts["due_closed"], closable),
        "closed_on_time_rate": ratio(counts["closed_on_time"], closable),
        "first_response_on_time_rate": ratio(counts["first_responded_on_time"], counts["received"]),
        "rework_rate": ratio(counts["reopened"], counts["closed"]),
        "escalation_rate": ratio(counts["escalated"], counts["received"]),
        "follow_up_rate": ratio(counts["followed_up"], counts["closed"]),
        "satisfaction_rate": ratio(counts["satisfied"], counts["answered"]),
        "accurate_dispatch_rate": None if not counts["dispatched"] else round(1 - counts["misdispatched"] / counts["dispatched"], 4),
        "average_handling_hours": round(counts["handling_hours"] / counts["closed"], 2) if counts["closed"] else None,
    })
    return row


def scorecard(cases, period, by):
    """One row per holder at level ``by`` with anything to count in ``period``, ordered by id."""
    totals = {}
    for case in cases:
        key = holder(case, by)
        if key is None:
            continue
        counts = case_counts(case, period)
        if not any(counts.values()):
            continue
        total = totals.setdefault(key, dict.fromkeys(COUNTS, 0))
        for name, value in counts.items():
            total[name] += value
    return [{KEYS[by]: key, **with_rates(total)} for key, total in sorted(totals.items())]


def town_counts(rows, town_ids):
    """The counts of town rows, with every town of ``town_ids`` (the registry's) at 0
    when it has nothing to count: a gauge left from an earlier month drops to 0."""
    counts = {town_id: dict.fromkeys(COUNTS, 0) for town_id in town_ids}
    for row in rows:
        counts[row["town_id"]] = {name: row[name] for name in COUNTS}
    return counts


# -- figures of care and study ------------------------------------------------------

CARE_FIGURES = ("visits_due", "visits_on_time")
STUDY_FIGURES = ("study_members", "study_participants")


def merge_figures(rows, by, others, names, rate_name, in_scope):
    """Add ``names`` (two counts: due and done) from another service's ``others`` rows
    (keyed like ours) to ``rows``, with their ratio as ``rate_name``; rows of theirs we
    have no row for are added, with no cases, when ``in_scope(key)``. Our rows they have
    none for get 0."""
    key_name = KEYS[by]
    theirs = {row[key_name]: row for row in others if row.get(key_name) is not None}
    merged = []
    for row in rows:
        found = theirs.pop(row[key_name], {})
        merged.append({**row, **{name: int(found.get(name) or 0) for name in names}})
    for key, found in theirs.items():
        if in_scope(key):
            nothing = with_rates(dict.fromkeys(COUNTS, 0))
            merged.append({key_name: key, **nothing, **{name: int(found.get(name) or 0) for name in names}})
    for row in merged:
        row[rate_name] = ratio(row[names[1]], row[names[0]])
    return sorted(merged, key=lambda row: row[key_name])


def study_rows(reports, by):
    """Per-level ``members``/``participants`` of several campaigns' reports, summed."""
    totals = {}
    for report in reports:
        for row in report:
            key = row.get(KEYS[by])
            if key is None:
                continue
            total = totals.setdefault(key, {KEYS[by]: key, "study_members": 0, "study_participants": 0})
            total["study_members"] += int(row.get("members") or 0)
            total["study_participants"] += int(row.get("participants") or 0)
    return list(totals.values())


def campaign_starts(campaign):
    schedule = campaign.get("schedule") or {}
    return schedule.get("at") or schedule.get("start")


def columns(by, rows):
    """The CSV header: the level's id, every count and rate, then what care and study added."""
    extra = [name for name in (*CARE_FIGURES, "visit_rate", *STUDY_FIGURES, "study_participation_rate")
             if any(name in row for row in rows)]
    return [KEYS[by], *COUNTS, *RATES, *extra]


def as_csv(by, rows):
    """Rows as CSV with a header row. Cells are registry ids (which start with a letter
    or digit, never like a spreadsheet formula) and numbers."""
    output = io.StringIO()
    writer = csv.DictWriter(output, fieldnames=columns(by, rows), restval="", lineterminator="\r\n")
    writer.writeheader()
    writer.writerows({key: "" if value is None else value for key, value in row.items()} for row in rows)
    return output.getvalue()
