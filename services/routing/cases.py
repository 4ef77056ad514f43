"""Opening, merging, moving and escalating cases.

Each function plans a change (a ``Plan``) from the case as read; the service
applies it with the store's conditional update, so a plan made from a stale
read never lands. Events go into the case's outbox in the same update and are
published after it; whatever the broker did not confirm is published again by
a timer. Event ids are derived from the case and its version, so a repeat is
recognisable downstream.
"""
from dataclasses import dataclass, field
from wangge import events

from services.routing import results, sla
from services.routing.assign import person
from services.routing import follow_up
from services.routing.lifecycle import (
    FIRST_RESPONSE_STATUSES, Actor, CaseRuleViolation, Move, check_step, check_transition, next_level, plan_move,
)
from services.routing.locate import TRIAGE

SYSTEM = Actor("routing", "system")
# The resident answering the follow-up: whoever holds the link the message carried.
RESIDENT = Actor("resident", "resident")
SUMMARY_CHARS = 120
# Changes every linked resident's tracking view must show.
OUTCOME_STATUSES = ("resolved", "closed", "reopened", "rejected")


@dataclass
class Plan:
    changes: dict
    timeline: list = field(default_factory=list)
    events: list = field(default_factory=list)  # (event_type, overrides)
    pushes: dict = field(default_factory=dict)
    guard: dict = field(default_factory=dict)


def case_id_for(tracking_no):
    return f"C-{tracking_no}"


def reporter_entry(request, now):
    """A request linked to the case: who reported it, and where from (results go back to a system that sent it)."""
    return {"request_id": request["request_id"], "tracking_no": request["tracking_no"], "reporter": request.get("reporter"), "at": now,
            "source": request.get("source"), "channel": request.get("channel"), "external_ref": request.get("external_ref")}


def new_case(request, request_class, location, grid, assignee, policy, tokens, now, queue):
    """The document of a case opened from ``request`` (not yet stored), classified as
    ``request_class`` (classification.RequestClass); ``queue``: whether and why it
    waits for a dispatcher (dispatch.waiting or dispatch.not_waiting)."""
    clocks = sla.start_clocks(now, policy)
    status = "assigned" if assignee else "received"
    case = {
        "_id": case_id_for(request["tracking_no"]),
        "version": 0,
        "request_id": request["request_id"],
        "tracking_no": request["tracking_no"],
        "request_ids": [request["request_id"]],
        "reporters": [reporter_entry(request, now)],
        "reporter_count": 1,
        "text": request["text"],
        "channel": request["channel"],
        "source": request["source"],
        "address": request.get("address"),
        "location": request.get("location"),
        "media": request.get("media", []),
        "grid_id": location.grid_id,
        "grid_name": grid and grid["name"],
        "community_id": grid and grid["community_id"],
        "town_id": location.town_id,
        "located_by": location.method,
        "triage": location.method == TRIAGE,
        **request_class.fields.as_changes(),
        "category_name": request_class.fields.subclass_name,
        "keywords": list(request_class.keywords),
        "classification": request_class.record,
        **queue,
        "return_count": 0,
        "returns": [],
        "tokens": tokens,
        "level": "grid" if grid and not queue["awaiting_dispatch"] else "town",
        "department": None,
        "assignee": assignee,
        "grid_head": grid and person(grid["head"]),
        "wechat_group_ids": grid["wechat_groups"] if grid else [],
        "status": status,
        "status_at": now,
        "opened_at": now,
        "updated_at": now,
        "first_response_at": None,
        "awaiting_response": True,
        "resolved_at": None,
        "closed_at": None,
        "sla": clocks,
        "five_steps": [],
        "notes": [],
        "follow_up": None,
    }
    case["sla_next_check_at"] = sla.next_check_at(case)
    located = "进入乡镇分拨队列 · town triage: no grid found" if location.method == TRIAGE else f"定位到网格 {grid['name']} · located by {location.method}"
    if queue["awaiting_dispatch"] and location.method != TRIAGE:
        located += "；分类待人工确认 · waits for a dispatcher to confirm its class"
    case["timeline"] = [{"kind": "status", "from": None, "to": "received", "at": now, **SYSTEM.recorded(), "note": located}]
    if assignee:
        case["timeline"].append({"kind": "status", "from": "received", "to": "assigned", "at": now, **SYSTEM.recorded(),
                                 "note": f"分派给 {assignee['name']} · assigned"})
    case["outbox_pending_since"] = now
    case["outbox"] = outbox_entries(case, [
        (events.CASE_STATUS_CHANGED, {"previous_status": "received" if assignee else None, "note": located}),
        *([(events.CASE_ASSIGNED, {"previous_status": "received"})] if assignee else []),
    ], now, version=0)
    return case


# What every case event carries of the case as it stands.
EVENT_FIELDS = (
    "grid_id", "grid_name", "community_id", "town_id", "category", "category_name", "subclass", "subclass_name", "major",
    "major_name", "complexity", "urgent", "level", "department", "assignee", "grid_head", "wechat_group_ids", "reporter_count",
    "awaiting_dispatch",
)
# What the SLA timer reads of a due case to plan its tick and build the events:
# everything else (timeline, notes, tokens, every merged reporter) stays in the store.
SLA_TICK_FIELDS = (
    "_id", "version", "request_id", "tracking_no", "status", "awaiting_response", "sla", "sla_next_check_at",
    "opened_at", "first_response_at", "text", "reporters", "outbox", "responsible_department", *EVENT_FIELDS,
)


def case_event(case, event_type, now, version, overrides):
    reporter = (case.get("reporters") or [{}])[0].get("reporter")
    data = {
        "case_id": case["_id"], "request_id": case["request_id"], "tracking_no": case["tracking_no"],
        "status": case["status"], "previous_status": None, "at": now, "version": version,
        **{key: case.get(key) for key in EVENT_FIELDS},
        "reporter": reporter, "summary": case.get("text", "")[:SUMMARY_CHARS] or None, "actor": SYSTEM.subject, "note": None,
        "resolution_due_at": resolution_due_at(case),
        **overrides,
    }
    data["result"] = results.public_result(case, data)
    if data["assignee"]:
        data["assignee"] = person(data["assignee"])
    # two events of one type in one change differ by request (merges) or by clock (SLA)
    event_id = ":".join(filter(None, (case["_id"], str(version), event_type, data["request_id"], data.get("sla_clock"))))
    return events.build_event(event_type, data, event_id=event_id, occurred_at=now)


def resolution_due_at(case):
    """The resolution deadline of an open case (its clock at the current level), else ``None``."""
    if sla.RESOLUTION not in sla.running_clocks(case):
        return None
    return ((case.get("sla") or {}).get(sla.RESOLUTION) or {}).get("due_at")


def outbox_entries(case, planned, now, version):
    """The events of a change, each status change followed by the result it owes the
    system that sent its request, if one did."""
    entries = []
    for event_type, overrides in planned:
        event = case_event(case, event_type, now, version, overrides)
        entries.append({"event_id": event["event_id"], "event_type": event_type, "event": event, "queued_at": now})
        if event_type == events.CASE_STATUS_CHANGED:
            entries += filter(None, [results.outbound_entry(case, event, now)])
    return entries


def after(case, plan):
    """The case as it will be once ``plan`` is applied (for events and clocks)."""
    target = {**case, **plan.changes}
    for key, item in plan.pushes.items():
        target[key] = [*case.get(key, []), item]
    return target


# -- merging duplicates ---------------------------------------------------------

def plan_merge(case, request, now):
    """Link a near-duplicate request to an open case instead of opening another."""
    entry = {"kind": "merged_request", "at": now, **SYSTEM.recorded(), "request_id": request["request_id"],
             "note": f"{request['tracking_no']} 反映同一件事，已合并 · merged"}
    plan = Plan(
        changes={"reporter_count": case["reporter_count"] + 1, "updated_at": now},
        timeline=[entry],
        pushes={"request_ids": request["request_id"], "reporters": reporter_entry(request, now)},
        guard={"request_ids": {"$ne": request["request_id"]}},
    )
    about_request = {"request_id": request["request_id"], "tracking_no": request["tracking_no"], "reporter": request.get("reporter")}
    plan.events = [
        (events.CASE_STATUS_CHANGED, {**about_request, "status": "merged", "previous_status": "received",
                                      "note": f"已在处理中，并入 {case['_id']} · already being handled"}),
        (events.CASE_MERGED, {**about_request, "reporter_count": case["reporter_count"] + 1}),
    ]
    return plan


# -- moves by people --------------------------------------------------------------

def plan_case_move(case, move, now, policy, follow_up_token=None):
    """``follow_up_token`` (a ``follow_up.IssuedToken``): the link a resolution sends the resident."""
    changes, entry = plan_move(case, move, now)
    if move.status in FIRST_RESPONSE_STATUSES:
        changes["awaiting_response"] = False
    if move.status == "reopened":
        changes["sla"] = sla.start_clocks(now, policy, escalated=case["level"] != "grid")
        changes["awaiting_response"] = True
    plan = Plan(changes=changes, timeline=[entry])
    plan.changes["sla_next_check_at"] = sla.next_check_at(after(case, plan))
    status_event = {"previous_status": case["status"], "actor": move.actor.subject, "note": move.note}
    plan.events = [(events.CASE_STATUS_CHANGED, status_event)]
    if move.status == "resolved":
        plan.changes["follow_up_token"] = follow_up_token.record
        plan.events.append((events.FOLLOW_UP_REQUESTED, {**status_event, "follow_up_token": follow_up_token.token}))
    if move.status == "closed":
        plan.events.append((events.CASE_CLOSED, status_event))
    if move.status in OUTCOME_STATUSES:
        # residents whose requests were merged in follow the case to its outcome too
        for linked in case.get("reporters", [])[1:]:
            about = {"request_id": linked["request_id"], "tracking_no": linked["tracking_no"], "reporter": linked.get("reporter")}
            plan.events.append((events.CASE_STATUS_CHANGED, {**status_event, **about}))
            if move.status == "closed":
                plan.events.append((events.CASE_CLOSED, {**status_event, **about}))
    return plan


def placed_in(grid):
    """What a case in ``grid`` says of it."""
    return {
        "grid_id": grid["id"], "grid_name": grid["name"], "community_id": grid["community_id"], "town_id": grid["town_id"],
        "triage": False, "grid_head": person(grid["head"]), "wechat_group_ids": grid["wechat_groups"],
    }


def plan_assignment(case, grid, worker, actor, note, now, policy):
    """Hand the case to ``worker`` of ``grid`` (its own, or another it moves to)."""
    plan = plan_case_move(case, Move("assigned", actor, note), now, policy)
    # a grid worker takes it: the case is back at grid level, whatever level handed it down
    plan.changes.update({**placed_in(grid), "assignee": {**person(worker), "role": "worker"}, "level": "grid", "department": None})
    plan.events.append((events.CASE_ASSIGNED, {"previous_status": case["status"], "actor": actor.subject, "note": note}))
    return plan


def plan_note(case, actor, note, now):
    if case["status"] in ("merged", "rejected"):
        raise CaseRuleViolation(f"The case is {case['status']}: notes are closed.", case["status"])
    entry = {"kind": "note", "at": now, **actor.recorded(), "note": note}
    return Plan(changes={"updated_at": now}, timeline=[entry], pushes={"notes": {"at": now, **actor.recorded(), "note": note}})


def plan_step(case, step, actor, note, now):
    check_step(case, step)
    entry = {"step": step, "at": now, **actor.recorded(), "note": note}
    return Plan(
        changes={"updated_at": now},
        timeline=[{"kind": "five_step", **entry}],
        pushes={"five_steps": entry},
    )


def plan_follow_up(case, token_digest, solved, satisfaction, note, now, policy):
    """Record the resident's answer (回访) given with the case's follow-up token
    (its digest), which it uses up; not solved reopens the case, solved closes it."""
    follow_up.check(case.get("follow_up_token"), token_digest, now)
    if case["status"] not in ("resolved", "closed"):
        raise CaseRuleViolation(f"Follow-up comes after resolution; the case is {case['status']}.", case["status"])
    target = "closed" if solved else "reopened"
    if case["status"] == "closed" and solved:
        raise CaseRuleViolation("The case is already closed.", case["status"])
    plan = plan_case_move(case, Move(target, RESIDENT, note), now, policy)
    plan.changes["follow_up"] = {"solved": solved, "satisfaction": satisfaction, "note": note, "at": now}
    plan.changes["follow_up_token"] = {**case["follow_up_token"], "used_at": now}
    return plan


# -- escalation -------------------------------------------------------------------

def escalation_target(case, level, registry, department_id=None):
    """(assignee, department) for the level a case climbs to."""
    if level == "community":
        community = registry.community(case.get("community_id"))
        return (community and community.get("head")), None
    if level == "town":
        town = registry.town(case.get("town_id"))
        return (town and town.get("head")), None
    department = registry.department(department_id) if department_id else registry.department_for(case)
    if department is None:
        wanted = f"department {department_id!r}" if department_id else f"a department handling {case.get('subclass') or case.get('category')!r}"
        raise CaseRuleViolation(f"There is no {wanted} in the registry; name one with department_id.", case["status"])
    return department["contact"], {"id": department["id"], "name": department["name"], "contact": person(department["contact"])}


def plan_escalation(case, actor, note, now, policy, registry, department_id=None):
    check_transition(case["status"], "escalated")
    level = next_level(case["level"])
    while level == "community" and not case.get("community_id"):
        level = next_level(level)  # a triage case has no community to climb to
    assignee, department = escalation_target(case, level, registry, department_id)
    changes = {
        "status": "escalated", "status_at": now, "updated_at": now, "level": level,
        "assignee": {**person(assignee), "role": f"{level}_lead"} if assignee else None,
        "awaiting_response": True,
        "sla": sla.start_clocks(now, policy, escalated=True),
    }
    if department:
        changes["department"] = department
    entry = {"kind": "escalation", "from": case["status"], "to": "escalated", "from_level": case["level"], "to_level": level,
             "at": now, **actor.recorded(), "note": note}
    plan = Plan(changes=changes, timeline=[entry])
    plan.changes["sla_next_check_at"] = sla.next_check_at(after(case, plan))
    details = {"previous_status": case["status"], "actor": actor.subject, "note": note}
    plan.events = [(events.CASE_STATUS_CHANGED, details), (events.CASE_ESCALATED, details)]
    return plan


# -- SLA clocks ----------------------------------------------------------------------

def plan_sla_tick(case, now, policy, registry):
    """What the SLA timer owes this case now, or ``None``. A breach escalates one
    level up (unless the case is already with a department)."""
    actions = sla.due_actions(case, now)
    if not actions:
        next_check = sla.next_check_at(case)
        return Plan(changes={"sla_next_check_at": next_check}) if next_check != case.get("sla_next_check_at") else None
    clocks = {clock: dict(state) for clock, state in case["sla"].items()}
    timeline, planned = [], []
    breached = False
    for kind, clock in actions:
        state = clocks[clock]
        if kind == sla.WARNING:
            state["warned"] = True
            planned.append((events.SLA_WARNING, {"sla_clock": clock, "due_at": state["due_at"], "note": "即将超时 · deadline near"}))
        else:
            state["breached"] = state["warned"] = True
            breached = True
            planned.append((events.SLA_BREACHED, {"sla_clock": clock, "due_at": state["due_at"], "note": "已超时 · deadline missed"}))
        timeline.append({"kind": f"sla_{kind}", "clock": clock, "due_at": state["due_at"], "at": now, **SYSTEM.recorded()})
    plan = Plan(changes={"sla": clocks}, timeline=timeline, events=planned)
    # a case waiting for a dispatcher stays with them: the breach is theirs to answer
    if breached and case["level"] != "department" and not case.get("awaiting_dispatch"):
        try:
            escalation = plan_escalation(case, SYSTEM, "超时自动上报 · escalated on a missed deadline", now, policy, registry)
        except CaseRuleViolation:
            escalation = None  # nowhere to climb (no department for the category): the breach still stands
        if escalation is not None:
            plan.changes.update(escalation.changes)  # fresh clocks for the new level replace the breached ones
            plan.timeline += escalation.timeline
            plan.events += escalation.events
    plan.changes["sla_next_check_at"] = sla.next_check_at(after(case, plan))
    return plan

