"""Campaigns: whom they target, when each round falls due, and when its reminders do.

A round is one occurrence of a campaign's schedule (a one-off campaign has one).
Each round becomes one ``campaign_due`` dispatch per targeted grid and one
reminder dispatch per grid per reminder; dispatch ids are derived from
(campaign, round, grid, kind), so however many processes create or publish
them, each exists once.

A repeating rule is read on the county's wall clock (``CAMPAIGNS.TIMEZONE``):
``BYHOUR=9`` is 09:00 there for every round, whatever offset the start was given
in or is stored in. Rounds go at least ``MIN_ROUND_GAP_HOURS`` apart and
reminders at least ``MIN_REMINDER_HOURS`` after their round, and the next round
must come within four years: a search for it is bounded.
"""
from dataclasses import dataclass
from datetime import MAXYEAR, timedelta, timezone
from zoneinfo import ZoneInfo

from dateutil.rrule import rrulestr

from wangge.errors import ApiError

CAMPAIGN_DUE = "campaign_due"
REMINDER = "reminder"

FREQUENCIES = ("HOURLY", "DAILY", "WEEKLY", "MONTHLY", "YEARLY")
RULE_PARTS = ("FREQ", "INTERVAL", "COUNT", "BYMONTH", "BYWEEKNO", "BYYEARDAY", "BYMONTHDAY", "BYDAY", "BYHOUR", "BYMINUTE", "BYSETPOS", "WKST")
LOOKAHEAD_YEARS = 4
LOOKAHEAD = timedelta(days=365 * LOOKAHEAD_YEARS + 1)
START_WITHIN = timedelta(days=366)
ROUNDS_CHECKED = 100  # how many rounds ahead the minimum gap is checked when a campaign is created
# The Gregorian calendar repeats every 400 years (146,097 days, a whole number of weeks).
CALENDAR_CYCLE_YEARS = 400


class CampaignRejected(ApiError):
    """The campaign cannot be created as asked; ``fields`` say why."""


@dataclass(frozen=True)
class CampaignPolicy:
    """The county's clock and the minimums every campaign keeps (``CAMPAIGNS`` in config.yml)."""

    zone: ZoneInfo
    min_round_gap_hours: float
    min_reminder_hours: float

    @classmethod
    def from_config(cls, settings):
        return cls(ZoneInfo(settings["TIMEZONE"]), float(settings["MIN_ROUND_GAP_HOURS"]), float(settings["MIN_REMINDER_HOURS"]))

    @property
    def min_round_gap(self):
        return timedelta(hours=self.min_round_gap_hours)


def targeted_grids(target, grids):
    """The grid records a target names; unknown ids are an error naming them."""
    scope, ids = target["scope"], set(target.get("ids", []))
    if scope == "all":
        return sorted(grids.values(), key=lambda grid: grid["grid_id"])
    key = {"towns": "town_id", "communities": "community_id", "grids": "grid_id"}[scope]
    chosen = [grid for grid in grids.values() if grid[key] in ids]
    unknown = ids - {grid[key] for grid in chosen}
    if unknown:
        raise CampaignRejected(f"Unknown {scope}: {', '.join(sorted(unknown))}.", {"target": {"ids": [f"Unknown: {', '.join(sorted(unknown))}."]}})
    return sorted(chosen, key=lambda grid: grid["grid_id"])


def hours(value):
    return f"{value:g} hour" + ("" if value == 1 else "s")


def rule_rejected(message, problem, field="rrule"):
    return CampaignRejected(message, {"schedule": {field: [problem]}})


class RepeatingRule:
    """An RFC 5545 rule on the county's wall clock, each search for an occurrence bounded."""

    def __init__(self, text, start, zone):
        self.zone = zone
        self.text = checked_rule_text(text)
        self.start = self.wall_clock(start)
        try:
            rrulestr(self.text, dtstart=self.start)
        except (ValueError, TypeError) as exc:
            raise rule_rejected("The repeating rule is not valid.", str(exc)) from exc

    def wall_clock(self, moment):
        return moment.astimezone(self.zone).replace(tzinfo=None)

    def occurrences(self, moment, limit):
        """Up to ``limit`` occurrences at or after ``moment`` and within LOOKAHEAD of it, in UTC."""
        horizon = self.wall_clock(moment) + LOOKAHEAD
        # dateutil looks for a next occurrence up to year 9999 when none comes (10 s for
        # BYMONTH=2;BYMONTHDAY=30, in the only eventlet hub). In a copy of the calendar
        # moved whole cycles forward, just below 9999, that search ends within one cycle.
        years = CALENDAR_CYCLE_YEARS * max(0, (MAXYEAR - 1 - horizon.year) // CALENDAR_CYCLE_YEARS)
        rule = rrulestr(self.text, dtstart=shifted(self.start, years))
        found = []
        for occurrence in rule.xafter(shifted(self.wall_clock(moment), years), count=limit, inc=True):
            if occurrence > shifted(horizon, years):
                break
            found.append(shifted(occurrence, -years).replace(tzinfo=self.zone).astimezone(timezone.utc))
        return found


def shifted(wall_clock, years):
    return wall_clock.replace(year=wall_clock.year + years)


def checked_rule_text(text):
    """The rule's parts as ``NAME=VALUE;…``; parts that would let rounds come too often,
    move the rule's clock or end it outside ``schedule.until`` are refused."""
    body = text.strip()
    if body.upper().startswith("RRULE:"):
        body = body[len("RRULE:"):]
    parts = {}
    for part in body.split(";"):
        name, _, value = part.partition("=")
        name = name.strip().upper()
        if name == "UNTIL":
            raise rule_rejected("Give the end of a repeating schedule as until.", "UNTIL is not accepted here: set schedule.until instead.")
        if name not in RULE_PARTS or not value.strip():
            raise rule_rejected("The repeating rule is not valid.", f"{part.strip()!r} is not one of {', '.join(RULE_PARTS)} with a value.")
        parts[name] = value.strip().upper()
    if parts.get("FREQ") not in FREQUENCIES:
        raise rule_rejected("The repeating rule repeats too often.",
                            f"FREQ must be one of {', '.join(FREQUENCIES)}: rounds go at least an hour apart.")
    return ";".join(f"{name}={value}" for name, value in parts.items())


def check_reminder(reminder, policy):
    if reminder["after_hours"] < policy.min_reminder_hours:
        minimum = hours(policy.min_reminder_hours)
        raise CampaignRejected(f"Reminders must come at least {minimum} after their round.",
                               {"reminder": {"after_hours": [f"Must be at least {policy.min_reminder_hours:g}: reminders go at least {minimum} after their round."]}})


def first_round_at(schedule, now, policy):
    """When the first round falls due; a schedule that does not fire, fires too often or
    only in the past is refused, naming the field."""
    if "at" in schedule:
        if schedule["at"] <= now:
            raise CampaignRejected("The schedule is in the past.", {"schedule": {"at": ["Must be in the future."]}})
        return schedule["at"]
    start = schedule.setdefault("start", now)
    if abs(start - now) > START_WITHIN:
        raise rule_rejected("The start of the schedule is too far from now.", "Must lie within a year of now.", field="start")
    rule = RepeatingRule(schedule["rrule"], start, policy.zone)
    until = schedule.get("until")
    rounds = [due for due in rule.occurrences(max(now, start), ROUNDS_CHECKED) if until is None or due <= until]
    if not rounds:
        raise rule_rejected("The repeating rule never fires from now on.",
                            f"No round from now (and before until) within {LOOKAHEAD_YEARS} years: its parts never meet, or meet too rarely.")
    for earlier, later in zip(rounds, rounds[1:]):
        if later - earlier < policy.min_round_gap:
            raise rule_rejected(
                f"Rounds must be at least {hours(policy.min_round_gap_hours)} apart.",
                f"Rounds must be at least {hours(policy.min_round_gap_hours)} apart; this rule has rounds at "
                f"{earlier.astimezone(policy.zone).isoformat()} and {later.astimezone(policy.zone).isoformat()}.")
    return rounds[0]


def next_round_at(schedule, after, policy):
    """The round after the one due at ``after``, at least the minimum gap later and within
    LOOKAHEAD; ``None`` when the schedule has no more."""
    if "at" in schedule:
        return schedule["at"] if after < schedule["at"] else None
    rule = RepeatingRule(schedule["rrule"], schedule["start"], policy.zone)
    following = rule.occurrences(after + policy.min_round_gap, 1)
    until = schedule.get("until")
    return following[0] if following and (until is None or following[0] <= until) else None


def round_key(due_at):
    return due_at.isoformat()


def dispatch_id(campaign_id, round_due_at, grid_id, kind, number=0):
    return f"{campaign_id}|{round_key(round_due_at)}|{grid_id}|{kind}|{number}"


def round_dispatches(campaign, due_at):
    """Every dispatch of one round: the material for each grid, then its reminders."""
    policy = campaign["reminder"]
    documents = []
    for grid_id in sorted(campaign["grids"]):
        documents.append(_dispatch(campaign, due_at, grid_id, CAMPAIGN_DUE, 0, due_at))
        for number in range(1, policy["max"] + 1):
            remind_at = due_at + timedelta(hours=policy["after_hours"] * number)
            documents.append(_dispatch(campaign, due_at, grid_id, REMINDER, number, remind_at))
    return documents


def _dispatch(campaign, round_due_at, grid_id, kind, number, due_at):
    return {
        "_id": dispatch_id(campaign["_id"], round_due_at, grid_id, kind, number),
        "campaign_id": campaign["_id"], "round": round_key(round_due_at), "round_due_at": round_due_at,
        "grid_id": grid_id, "kind": kind, "number": number, "final": kind == REMINDER and number == campaign["reminder"]["max"],
        "due_at": due_at, "state": "pending", "claim": None, "claimed_until": None, "published_at": None,
    }


def participation_rate(members, participants):
    return round(participants / members, 4) if members else None


def rollup(rows, level):
    """Per-grid ``{members, participants}`` rows summed to community or town (or campaign)."""
    if level == "grid":
        return [{**row, "rate": participation_rate(row["members"], row["participants"])} for row in rows]
    totals = {}
    for row in rows:
        key = row.get(f"{level}_id") if level != "campaign" else "all"
        total = totals.setdefault(key, {f"{level}_id": key, "members": 0, "participants": 0})
        total["members"] += row["members"]
        total["participants"] += row["participants"]
    return [{**total, "rate": participation_rate(total["members"], total["participants"])} for _, total in sorted(totals.items(), key=lambda item: str(item[0]))]
