"""SLA clocks: when a case must first be answered and when it must be resolved,
when to warn, and when a missed deadline escalates it.

Deadlines are data on the case (they survive restarts); the timer only asks
``due_actions`` what is owed now.
"""
from dataclasses import dataclass
from datetime import timedelta

from services.routing.lifecycle import OPEN_STATUSES

FIRST_RESPONSE = "first_response"
RESOLUTION = "resolution"
CLOCKS = (FIRST_RESPONSE, RESOLUTION)

WARNING = "warning"
BREACH = "breach"


@dataclass(frozen=True)
class Policy:
    first_response: timedelta
    resolution_in_grid: timedelta
    resolution_escalated: timedelta
    warn_fraction: float  # warn when this share of the allowed time remains


def policy_for(config, category, urgent):
    """Defaults, then the category's overrides, then the urgent limits (which only shorten).
    A category's limit set empty (its environment variable) leaves the default."""
    own = {key: value for key, value in ((config.get("CATEGORIES") or {}).get(category) or {}).items() if value not in (None, "")}
    settings = {**config["DEFAULT"], **own}
    if urgent:
        urgent_settings = config["URGENT"]
        settings = {key: min(float(settings[key]), float(urgent_settings.get(key, settings[key]))) for key in settings}
    return Policy(
        first_response=timedelta(minutes=float(settings["FIRST_RESPONSE_MINUTES"])),
        resolution_in_grid=timedelta(hours=float(settings["RESOLUTION_HOURS_GRID"])),
        resolution_escalated=timedelta(hours=float(settings["RESOLUTION_HOURS_ESCALATED"])),
        warn_fraction=float(config.get("WARN_FRACTION", 0.25)),
    )


def _clock(due, allowed, warn_fraction):
    return {"due_at": due, "warn_at": due - allowed * warn_fraction, "warned": False, "breached": False}


def start_clocks(now, policy, escalated=False):
    """Fresh clocks for a case opened (or escalated, or reopened) now."""
    resolution = policy.resolution_escalated if escalated else policy.resolution_in_grid
    return {
        FIRST_RESPONSE: _clock(now + policy.first_response, policy.first_response, policy.warn_fraction),
        RESOLUTION: _clock(now + resolution, resolution, policy.warn_fraction),
    }


def running_clocks(case):
    """First response runs until someone at the case's current level answers;
    resolution until it is resolved."""
    if case["status"] not in OPEN_STATUSES:
        return ()
    if case.get("awaiting_response"):
        return CLOCKS
    return (RESOLUTION,)


def due_actions(case, now):
    """[(WARNING|BREACH, clock)] owed now; a breach makes its warning moot."""
    actions = []
    for clock in running_clocks(case):
        state = case["sla"][clock]
        if not state["breached"] and now >= state["due_at"]:
            actions.append((BREACH, clock))
        elif not state["warned"] and not state["breached"] and now >= state["warn_at"]:
            actions.append((WARNING, clock))
    return actions


def next_check_at(case):
    """When the timer next owes this case something (None: nothing pending)."""
    moments = []
    for clock in running_clocks(case):
        state = case["sla"][clock]
        if not state["breached"]:
            moments.append(state["due_at"] if state["warned"] else state["warn_at"])
    return min(moments) if moments else None

