"""Campaigns: whom they target, when each round falls due, and when its reminders do.

A round is one occurrence of a campaign's schedule (a one-off campaign has one).
Each round becomes one ``campaign_due`` dispatch per targeted grid and one
reminder dispatch per grid per reminder; dispatch ids are derived from
(campaign, round, grid, kind), so however many processes create or publish
them, each exists once.
"""
from datetime import timedelta

from dateutil.rrule import rrulestr

from wangge.http import ApiError

CAMPAIGN_DUE = "campaign_due"
REMINDER = "reminder"


class CampaignRejected(ApiError):
    """The campaign cannot be created as asked; ``fields`` say why."""


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


def occurrences(schedule):
    """A callable ``after(moment) -> next occurrence or None`` for the schedule."""
    if "at" in schedule:
        return lambda moment: schedule["at"] if moment < schedule["at"] else None
    rule = rrulestr(schedule["rrule"], dtstart=schedule["start"])
    until = schedule.get("until")

    def after(moment):
        following = rule.after(moment)
        return None if following is None or (until and following > until) else following

    return after


def first_round_at(schedule, now):
    """When the first round falls due; a schedule entirely in the past is refused."""
    if "at" in schedule:
        if schedule["at"] <= now:
            raise CampaignRejected("The schedule is in the past.", {"schedule": {"at": ["Must be in the future."]}})
        return schedule["at"]
    try:
        schedule.setdefault("start", now)
        following = occurrences(schedule)(max(now, schedule["start"]) - timedelta(microseconds=1))
    except (ValueError, TypeError) as exc:
        raise CampaignRejected("The repeating rule is not valid.", {"schedule": {"rrule": [str(exc)]}}) from exc
    if following is None:
        raise CampaignRejected("The repeating rule never fires from now on.", {"schedule": {"rrule": ["No occurrence after now."]}})
    return following


def next_round_at(schedule, after):
    return occurrences(schedule)(after)


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
