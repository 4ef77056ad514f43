"""Classification on a case and the dispatcher's queue: 派遣, 退单 and 改派.

A case waits for a dispatcher, instead of going on by itself, when

* ``low_confidence``: the classifier's top subclass is less likely than the
  confidence threshold; the dispatcher sees its top three and confirms one or
  picks another;
* ``unlocated``: no grid contains it (the town triage queue);
* ``returned`` (退单): whoever had it says it is not theirs (wrong grid, wrong
  department, wrong class), with a reason.

A town's cases wait in the town's queue (its town lead dispatches them); a case
with no town, or returned by a town lead or a department, waits in the county
command centre's, which sees every queue. A dispatcher sends a case on (改派) to
a grid or a department, correcting its class if it was wrong; every class a
person confirms or corrects is kept as a labelled example for the corpus.
"""
from dataclasses import dataclass

from wangge import events

from services.routing import sla
from services.routing.assign import person
from services.routing.cases import Plan, after, placed_in
from services.routing.lifecycle import CaseRuleViolation, Move, check_transition, plan_move

LOW_CONFIDENCE, UNLOCATED, RETURNED = "low_confidence", "unlocated", "returned"
WAIT_REASONS = (LOW_CONFIDENCE, UNLOCATED, RETURNED)
TOWN_QUEUE, COUNTY_QUEUE = "town", "county"
RETURN_REASONS = {
    "wrong_grid": "不属于本网格",
    "wrong_department": "不属于本部门职责",
    "wrong_class": "分类错误",
    "other": "其他原因",
}
# Returned by these, a case goes to the county: a town lead would be returning it to themselves.
COUNTY_RETURNERS = ("town_lead", "department", "county_center", "county_admin")
CONFIRMED, CORRECTED = "confirmed", "corrected"


def waiting(reason, town_id, now, queue=None):
    """The fields of a case waiting in a dispatcher's queue."""
    queue = queue or (TOWN_QUEUE if town_id else COUNTY_QUEUE)
    return {"awaiting_dispatch": True, "dispatch": {"reason": reason, "queue": queue, "town_id": town_id, "since": now}}


def not_waiting():
    return {"awaiting_dispatch": False, "dispatch": None}


def in_queue_of(case, towns, everywhere):
    """Whether a dispatcher of ``towns`` (or of every queue) dispatches ``case``."""
    if everywhere:
        return True
    queue = case.get("dispatch") or {}
    return queue.get("queue") == TOWN_QUEUE and queue.get("town_id") in towns


# -- 退单 ---------------------------------------------------------------------------

def plan_return(case, reason, actor, note, now):
    """The assignee (or a lead over them, or the department) hands back a case that is
    not theirs: it waits for a dispatcher, its clocks running on."""
    if case.get("awaiting_dispatch"):
        raise CaseRuleViolation("The case already waits for a dispatcher.", case["status"])
    check_transition(case["status"], "returned")
    queue = COUNTY_QUEUE if actor.role in COUNTY_RETURNERS or not case.get("town_id") else TOWN_QUEUE
    changes, entry = plan_move(case, Move("returned", actor, note), now)
    returned = {
        "reason": reason, "note": note, "at": now, **actor.recorded(),
        "assignee": person(case["assignee"]) if case.get("assignee") else None,
        "grid_id": case.get("grid_id"), "department_id": (case.get("department") or {}).get("id"), "level": case.get("level"),
    }
    changes.update({
        **waiting(RETURNED, case.get("town_id"), now, queue),
        "assignee": None, "department": None, "level": "town",
        "return_count": case.get("return_count", 0) + 1,
    })
    changes["dispatch"]["return_reason"] = reason
    plan = Plan(changes=changes, timeline=[{**entry, "kind": "returned", "reason": reason, "reason_words": RETURN_REASONS[reason]}],
                pushes={"returns": returned})
    plan.changes["sla_next_check_at"] = sla.next_check_at(after(case, plan))
    plan.events = [(events.CASE_STATUS_CHANGED, {
        "previous_status": case["status"], "actor": actor.subject, "note": note, "return_reason": reason,
    })]
    return plan


# -- 派遣 and 改派 ---------------------------------------------------------------------

@dataclass(frozen=True)
class Target:
    """Where a dispatcher sends a case: a grid and who there takes it (an
    assignee as ``assign.choose_assignee`` gives one), or a department (its contact
    takes it)."""

    grid: dict | None = None
    assignee: dict | None = None
    department: dict | None = None


def plan_dispatch(case, target, new_class, actor, note, now, policy):
    """Send the case on to ``target``, in ``new_class`` if a dispatcher corrected
    it. Its clocks start again: the new holder gets the whole time to answer."""
    check_transition(case["status"], "assigned")
    changes, entry = plan_move(case, Move("assigned", actor, note), now)
    if new_class is not None:
        changes.update(new_class.as_changes())
    if target.department is not None:
        department = target.department
        contact = department.get("contact") or {}
        changes.update({
            "level": "department", "triage": False,
            "department": {"id": department["id"], "name": department["name"], "contact": person(contact)},
            "assignee": {**person(contact), "role": "department"} if contact else None,
        })
        to_whom = department["name"]
    else:
        changes.update({**placed_in(target.grid), "level": "grid", "department": None,
                        "assignee": target.assignee})
        to_whom = target.grid["name"]
    changes.update({
        **not_waiting(), "awaiting_response": True,
        "sla": sla.start_clocks(now, policy, escalated=target.department is not None),
    })
    entry = {**entry, "kind": "dispatch", "to_level": changes["level"], "note": note or f"派遣至 {to_whom} · dispatched"}
    if new_class is not None and new_class.subclass != case.get("subclass"):
        entry.update({"from_subclass": case.get("subclass"), "to_subclass": new_class.subclass})
    plan = Plan(changes=changes, timeline=[entry])
    plan.changes["sla_next_check_at"] = sla.next_check_at(after(case, plan))
    details = {"previous_status": case["status"], "actor": actor.subject, "note": note}
    plan.events = [(events.CASE_STATUS_CHANGED, details), (events.CASE_ASSIGNED, details)]
    return plan


def labelled_example(case, text, subclass, actor, now):
    """The class a person gave the case's ``text`` (masked of personal data), for the
    corpus: ``None`` when nobody decided it (a re-dispatch of a confident case in its
    own class)."""
    classification = case.get("classification") or {}
    predicted = classification.get("subclass")
    if subclass != predicted:
        kind = CORRECTED
    elif not classification.get("confident", True):
        kind = CONFIRMED
    else:
        return None
    return {
        "_id": case["_id"], "text": text, "subclass": subclass, "predicted": predicted, "probability": classification.get("probability"),
        "model": classification.get("model"), "kind": kind, "by": actor.subject, "role": actor.role, "at": now,
    }
