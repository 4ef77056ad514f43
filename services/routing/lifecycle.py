"""A case's life: which moves are allowed, and what each move changes.

received → assigned → acknowledged → in_progress → resolved → closed, with
escalated (grid → community → town → department), reopened (the resident says
at follow-up it is not solved), returned (退单: its assignee says it is not
theirs; it waits for a dispatcher), merged (a duplicate) and rejected (with a reason).
Everything here is plain: the store applies a planned change only if the case
is still at the version it was planned from.
"""
from dataclasses import dataclass

from wangge.events import LEVELS
from wangge.errors import ApiError
OPEN_STATUSES = ("received", "assigned", "acknowledged", "in_progress", "escalated", "reopened", "returned")
TERMINAL_STATUSES = ("closed", "merged", "rejected")

TRANSITIONS = {
    # merged is reached only by routing's duplicate check, which links the reporter
    "received": {"assigned", "escalated", "rejected"},
    "assigned": {"assigned", "acknowledged", "in_progress", "resolved", "escalated", "rejected", "returned"},
    "acknowledged": {"assigned", "in_progress", "resolved", "escalated", "rejected", "returned"},
    "in_progress": {"assigned", "resolved", "escalated", "returned"},
    "escalated": {"assigned", "acknowledged", "in_progress", "resolved", "escalated", "rejected", "returned"},
    "resolved": {"closed", "reopened"},
    "reopened": {"assigned", "acknowledged", "in_progress", "resolved", "escalated", "returned"},
    # a dispatcher sends it on (改派) or, as for a request on arrival, rejects it
    "returned": {"assigned", "rejected"},
    "closed": {"reopened"},
    "merged": set(),
    "rejected": set(),
}

# A person has answered the resident: the first-response clock stops.
FIRST_RESPONSE_STATUSES = {"acknowledged", "in_progress", "resolved", "rejected"}

FIVE_STEPS = ("collect", "survey", "coordinate", "contact_departments", "evaluate")
FIVE_STEP_NAMES = {
    "collect": "收集议题", "survey": "实地调研", "coordinate": "开展协调",
    "contact_departments": "联系部门", "evaluate": "评估汇总",
}


class CaseRuleViolation(ApiError):
    """A move the case's rules do not allow; the message says why."""

    http_status = 409
    error_code = "not_allowed"

    def __init__(self, message, current_status=None):
        super().__init__(message)
        self.details = {"current_status": current_status} if current_status else {}


@dataclass(frozen=True)
class Actor:
    """Who changes a case: the verified subject of their token (or routing itself,
    or the resident answering the follow-up) and the role they act in."""

    subject: str
    role: str

    def recorded(self):
        """How timeline entries, notes and steps name them."""
        return {"by": self.subject, "role": self.role}


@dataclass(frozen=True)
class Move:
    status: str
    actor: Actor
    note: str | None = None


def check_transition(current, target):
    allowed = TRANSITIONS.get(current, set())
    if target not in allowed:
        options = ", ".join(sorted(allowed)) or "none: the case is finished"
        raise CaseRuleViolation(f"A case that is {current} cannot move to {target} (allowed: {options}).", current)


def next_level(level):
    position = LEVELS.index(level)
    if position == len(LEVELS) - 1:
        raise CaseRuleViolation("The case is already with a department: there is no higher level.")
    return LEVELS[position + 1]


def recorded_steps(case):
    return {entry["step"] for entry in case.get("five_steps", [])}


def check_step(case, step):
    """Five-step entries go in order: a step needs every earlier step recorded."""
    if case["status"] in TERMINAL_STATUSES:
        raise CaseRuleViolation(f"The case is {case['status']}: no more steps can be recorded.", case["status"])
    done = recorded_steps(case)
    missing = [s for s in FIVE_STEPS[:FIVE_STEPS.index(step)] if s not in done]
    if missing:
        names = "、".join(FIVE_STEP_NAMES[s] for s in missing)
        raise CaseRuleViolation(f"Record {names} ({', '.join(missing)}) before {step}.", case["status"])


def check_rules_for(case, move):
    """Rules beyond the transition table."""
    if move.status == "rejected" and not (move.note or "").strip():
        raise CaseRuleViolation("A rejection needs a reason in the note.", case["status"])
    # Checked at resolution, so the resident's "solved" at follow-up can always close it.
    if move.status in ("resolved", "closed") and case.get("level") == "department" and "evaluate" not in recorded_steps(case):
        raise CaseRuleViolation("A department-level case is resolved only after the evaluation step (评估汇总) is recorded.", case["status"])


def plan_move(case, move, now):
    """The fields a move sets and the timeline entry it adds; raises CaseRuleViolation."""
    check_transition(case["status"], move.status)
    check_rules_for(case, move)
    changes = {"status": move.status, "status_at": now, "updated_at": now}
    if move.status in FIRST_RESPONSE_STATUSES and case.get("first_response_at") is None:
        changes["first_response_at"] = now
    if move.status == "resolved":
        changes["resolved_at"] = now
    if move.status == "closed":
        changes["closed_at"] = now
    if move.status == "reopened":
        changes["resolved_at"] = None
        changes["closed_at"] = None
    entry = {"kind": "status", "from": case["status"], "to": move.status, "at": now, **move.actor.recorded(), "note": move.note}
    return changes, entry

