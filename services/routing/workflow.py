"""Routing's operations over the store: read a case, plan, apply, hand back the
events to publish. The service class only calls these and publishes."""
import logging
import random
import time
from datetime import timedelta

from wangge import events
from wangge.errors import ApiError
from wangge.logs import mask_name, redact_phones, short_error
from wangge.reliable import is_outage

from services.routing import cases, dispatch, follow_up, metrics, results, sla
from services.routing.assign import choose_assignee, person
from services.routing.duplicates import is_near_duplicate
from services.routing.lifecycle import LEVELS, OPEN_STATUSES, CaseRuleViolation, Move
from services.routing.storage import RequestInAnotherCase, all_of


log = logging.getLogger(__name__)

MERGE_RETRY_PAUSE_SECONDS = 0.02
REDELIVERY_LOOKUPS, REDELIVERY_LOOKUP_PAUSE_SECONDS = 3, 0.05


class CaseNotFound(ApiError):
    http_status = 404
    error_code = "not_found"


class ConcurrentChange(ApiError):
    http_status = 409
    error_code = "concurrent_change"


def policy_for(config, case):
    return sla.policy_for(config["SLA"], case.get("category"), case.get("urgent"))


def open_case(store, snapshot, classifier, config, request, now):
    """Open a case for a received request, or merge it into an open duplicate.
    Returns ``(case_id, outbox entries to publish)``; a redelivered request
    changes nothing and returns no entries (its events are in the outbox). A
    request is in one case at most (the store refuses a second), so a redelivery
    is found out when its case is inserted or merged, not by a read before."""
    request_class = classifier.classify(request["text"], request.get("category"))
    category = request_class.fields.category
    tokens = classifier.tokens(request["text"])
    location = snapshot.index.locate(request)
    grid = snapshot.grid(location.grid_id) if location.grid_id else None

    if grid is not None:
        try:
            merged = merge_into_duplicate(store, config, grid["id"], category, tokens, request, now)
        except RequestInAnotherCase:
            return case_of_redelivered(store, request)
        if merged is not None:
            return merged

    if grid is None:
        queue = dispatch.waiting(dispatch.UNLOCATED, location.town_id, now)
    elif not request_class.confident:
        queue = dispatch.waiting(dispatch.LOW_CONFIDENCE, location.town_id, now)
    else:
        queue = dispatch.not_waiting()
    assignee = None
    if grid is not None and not queue["awaiting_dispatch"]:
        assignee = choose_assignee(grid, store.open_cases_by_assignee)
    policy = sla.policy_for(config["SLA"], category, request_class.fields.urgent)
    case = cases.new_case(request, request_class, location, grid, assignee, policy, tokens, now, queue)
    if not store.insert_case(case):
        return case_of_redelivered(store, request)
    fields = request_class.fields
    metrics.CASES_OPENED.labels(location.town_id or "unknown", category).inc()
    metrics.CLASSIFIED.labels(fields.major, fields.subclass, "auto" if request_class.confident else "dispatcher").inc()
    return case["_id"], case["outbox"]


def case_of_redelivered(store, request):
    """The case an earlier (or concurrent) delivery of the request opened or joined,
    with nothing to publish: its events are in that case's outbox. A concurrent
    delivery's case may not be visible yet to a majority read: look again briefly,
    then leave the message to be retried."""
    for attempt in range(REDELIVERY_LOOKUPS):
        if attempt:
            time.sleep(REDELIVERY_LOOKUP_PAUSE_SECONDS)
        found = store.case_for_request(request["request_id"])
        if found is not None:
            return found["_id"], []
    raise ConcurrentChange(f"Request {request['tracking_no']} is in a case not visible yet; retry.")


def merge_into_duplicate(store, config, grid_id, category, tokens, request, now):
    """Merge the request into an open near-duplicate: ``(case_id, outbox)``, or
    ``None`` if there is none. When a street light falls in a typhoon, dozens of
    residents report it at once and every merge changes the same case; the merge
    that loses a race reads the case again and retries here, since a round through
    the retry queue per lost race would soon dead-letter the request."""
    attempts = int(config["DUPLICATES"]["MERGE_ATTEMPTS"])
    for attempt in range(1, attempts + 1):
        duplicate = find_duplicate(store, config, grid_id, category, tokens, now)
        if duplicate is None:
            return None
        if request["request_id"] in duplicate["request_ids"]:
            return duplicate["_id"], []  # a concurrent delivery of this request merged it
        try:
            outbox = apply(store, duplicate, cases.plan_merge(duplicate, request, now), now)
        except ConcurrentChange:
            if attempt == attempts:
                raise
            metrics.MERGE_CONFLICTS.inc()
            # a random pause, so the losers of one race do not all meet again in the next
            time.sleep(random.uniform(0, MERGE_RETRY_PAUSE_SECONDS))
            continue
        metrics.MERGES.inc()
        return duplicate["_id"], outbox


def find_duplicate(store, config, grid_id, category, tokens, now):
    settings = config["DUPLICATES"]
    window = float(settings["WINDOW_HOURS"])
    if window <= 0:
        return None  # merging is off: no candidate to read
    since = now - timedelta(hours=window)
    for candidate in store.open_duplicate_candidates(grid_id, category, since):
        if is_near_duplicate(tokens, candidate.get("tokens", []), float(settings["THRESHOLD"])):
            return store.get_case(candidate["_id"])
    return None


def apply(store, case, plan, now):
    """Apply a plan to the case as read, or raise ``ConcurrentChange`` if the case
    moved meanwhile. Returns the case's outbox to publish, in order: events an
    earlier change could not publish first, then the ones this change queued."""
    version = case["version"] + 1
    target = cases.after(case, plan)
    entries = cases.outbox_entries(target, plan.events, now, version)
    # Only a change adds to an outbox, and a change since this read would make this
    # one lose: the outbox as read holds every earlier event still pending (some may
    # have been published meanwhile; they go out again under the same ids).
    pending = [*case.get("outbox", []), *entries]
    applied = store.apply_change(
        case["_id"], case["version"], plan.changes, plan.timeline, entries, plan.pushes, plan.guard,
        pending_since=pending[0]["queued_at"] if pending else None,
    )
    if not applied:
        raise ConcurrentChange(f"Case {case['_id']} changed while this change was being made; read it again and retry.")
    observe(case, target, now)
    return pending


def publish_outbox(store, dispatch, publish_result, case_id, outbox):
    """Publish a case's outbox oldest first and drop what the broker confirmed:
    events with ``dispatch``, results for the systems that sent its requests with
    ``publish_result``. The first failure stops it: later entries wait for that one,
    so nobody hears "closed" before "assigned"; the timer starts again from it."""
    published = []
    for entry in outbox:
        try:
            if entry["event_type"] == results.OUTBOUND:
                publish_result(entry["event"], routing_key=entry["routing_key"], message_id=entry["event"]["message_id"],
                               delivery_mode=2)
            else:
                dispatch(entry["event_type"], entry["event"])
        except Exception as exc:
            log.warning("event not published yet", extra={"case_id": case_id, "event_type": entry["event_type"], "reason": short_error(exc)})
            break
        published.append(entry["event_id"])
    if published:
        store.clear_outbox(case_id, published)
    return published


def observe(before, target, now):
    if before.get("first_response_at") is None and target.get("first_response_at") is not None:
        metrics.FIRST_RESPONSE.observe((now - before["opened_at"]).total_seconds())
    if target["status"] == "resolved" and before["status"] != "resolved":
        metrics.RESOLUTION.observe((now - before["opened_at"]).total_seconds())
    if LEVELS.index(target.get("level") or "grid") > LEVELS.index(before.get("level") or "grid"):
        metrics.ESCALATIONS.labels(target["level"]).inc()


def load_case(store, case_id):
    case = store.get_case(case_id)
    if case is None:
        raise CaseNotFound(f"No case {case_id}.")
    return case


def move_case(store, config, case, status, actor, note, now):
    if status == "escalated":
        raise CaseRuleViolation("Use the escalate action to escalate (it chooses the next level).", case["status"])
    if status == "assigned":
        raise CaseRuleViolation("Use the assign action to assign (it names the worker).", case["status"])
    token = follow_up.issue(now, timedelta(days=float(config["FOLLOW_UP"]["TOKEN_DAYS"]))) if status == "resolved" else None
    plan = cases.plan_case_move(case, Move(status, actor, note), now, policy_for(config, case), token)
    if token is not None:
        # written before the change: should the change lose a race, nobody ever hears of this token
        store.remember_follow_up_token(token.record["digest"], case["_id"], token.record["expires_at"])
    return case["_id"], apply(store, case, plan, now)


def assign_case(store, snapshot, config, case, worker_id, grid_id, actor, note, now):
    """Hand the case to a worker of ``grid_id`` (by default the case's own grid)."""
    grid = snapshot.grid(grid_id or case.get("grid_id"))
    if grid is None:
        raise CaseRuleViolation(f"No grid {grid_id or case.get('grid_id')} to assign the case in; name one with grid_id.", case["status"])
    workers = {w["id"]: w for w in grid.get("workers", [])}
    if worker_id not in workers:
        raise CaseRuleViolation(f"{worker_id} is not a worker of grid {grid['id']}.", case["status"])
    plan = cases.plan_assignment(case, grid, workers[worker_id], actor, note, now, policy_for(config, case))
    return case["_id"], apply(store, case, plan, now)


def place_from_triage(store, snapshot, config, case, grid_id, actor, note, now):
    """A person places a triage case in a grid: its on-duty worker takes it."""
    if not case.get("triage") or case.get("grid_id"):
        raise CaseRuleViolation("Only a case waiting in triage can be placed in a grid.", case["status"])
    grid = snapshot.grid(grid_id)
    if grid is None:
        raise CaseNotFound(f"No grid {grid_id}.")
    assignee = choose_assignee(grid, store.open_cases_by_assignee)
    plan = cases.plan_case_move(case, Move("assigned", actor, note), now, policy_for(config, case))
    plan.changes.update({**cases.placed_in(grid), **dispatch.not_waiting(), "level": "grid", "assignee": assignee})
    plan.events.append((events.CASE_ASSIGNED, {"previous_status": case["status"], "actor": actor.subject, "note": note}))
    return case["_id"], apply(store, case, plan, now)


def return_case(store, config, case, reason, actor, note, now):
    """退单: the case is not the caller's; it goes to a dispatcher's queue."""
    change = case["_id"], apply(store, case, dispatch.plan_return(case, reason, actor, note, now), now)
    metrics.RETURNS.labels(reason, actor.role).inc()
    return change


def dispatch_case(store, snapshot, classifier, config, case, target_ids, subclass, actor, note, now):
    """派遣 / 改派: a dispatcher sends the case to a grid (its on-duty worker, or
    ``worker_id``) or a department, in ``subclass`` if they correct its class.
    ``target_ids``: ``grid_id``, ``worker_id``, ``department_id`` (each may be ``None``;
    with none, the case goes to its own grid)."""
    target = dispatch_target(store, snapshot, case, **target_ids)
    new_class = None
    if subclass is not None and subclass != case.get("subclass"):
        if subclass not in classifier.taxonomy.subclasses:
            raise CaseRuleViolation(f"No subclass {subclass!r} in the taxonomy (GET /api/v1/taxonomy lists them).", case["status"])
        new_class = classifier.reclassify(case["text"], subclass)
    category, urgent = (new_class.category, new_class.urgent) if new_class else (case.get("category"), case.get("urgent"))
    policy = sla.policy_for(config["SLA"], category, urgent)
    plan = dispatch.plan_dispatch(case, target, new_class, actor, note, now, policy)
    chosen = new_class.subclass if new_class else case.get("subclass")
    example = dispatch.labelled_example(case, example_text(case), chosen, actor, now)
    entries = apply(store, case, plan, now)
    if example is not None:
        # after the change: a dispatch that lost a race labels nothing
        store.keep_labelled_example(example)
        predicted = case.get("classification") or {}
        if example["kind"] == dispatch.CORRECTED:
            metrics.CORRECTIONS.labels(case.get("major") or "unknown", predicted.get("subclass") or "unknown").inc()
    metrics.DISPATCHES.labels((case.get("dispatch") or {}).get("reason") or "redispatch").inc()
    return case["_id"], entries


def dispatch_target(store, snapshot, case, grid_id=None, worker_id=None, department_id=None):
    if department_id is not None:
        department = snapshot.department(department_id)
        if department is None:
            raise CaseNotFound(f"No department {department_id} in the registry.")
        return dispatch.Target(department=department)
    grid = snapshot.grid(grid_id or case.get("grid_id"))
    if grid is None:
        raise CaseRuleViolation("The case is in no grid: name the grid_id or department_id to send it to.", case["status"])
    workers = {w["id"]: w for w in grid.get("workers", [])}
    if worker_id is not None:
        if worker_id not in workers:
            raise CaseRuleViolation(f"{worker_id} is not a worker of grid {grid['id']}.", case["status"])
        return dispatch.Target(grid=grid, assignee={**person(workers[worker_id]), "role": "worker"})
    return dispatch.Target(grid=grid, assignee=choose_assignee(grid, store.open_cases_by_assignee))


def example_text(case):
    """The resident's words as the corpus may keep them: phone numbers and the
    reporters' names masked."""
    text = redact_phones(case.get("text") or "")
    for linked in case.get("reporters", []):
        name = (linked.get("reporter") or {}).get("name")
        if name and len(name) >= 2:
            text = text.replace(name, mask_name(name))
    return text


def escalate_case(store, snapshot, config, case, actor, note, department_id, now):
    plan = cases.plan_escalation(case, actor, note, now, policy_for(config, case), snapshot, department_id)
    return case["_id"], apply(store, case, plan, now)


def record_step(store, case, step, actor, note, now):
    return case["_id"], apply(store, case, cases.plan_step(case, step, actor, note, now), now)


def add_note(store, case, actor, note, now):
    return case["_id"], apply(store, case, cases.plan_note(case, actor, note, now), now)


def record_follow_up(store, config, token, solved, satisfaction, note, now):
    """The resident's answer, given with the token of their follow-up link."""
    token_digest = follow_up.digest(token)
    case_id = store.case_for_follow_up_token(token_digest)
    if case_id is None:
        raise follow_up.FollowUpTokenUnknown("No follow-up is waiting under this link.")
    case = load_case(store, case_id)
    plan = cases.plan_follow_up(case, token_digest, solved, satisfaction, note, now, policy_for(config, case))
    return case_id, apply(store, case, plan, now)


def check_deadlines(store, snapshot, config, now):
    """One round of the SLA timer: [(case_id, entries)]. A case another replica
    changed meanwhile is skipped; that replica has done (or will do) the work."""
    published = []
    retry_after = timedelta(minutes=float(config["SLA"]["FAILED_CHECK_RETRY_MINUTES"]))
    for case in store.cases_due_for_sla(now, cases.SLA_TICK_FIELDS):
        try:
            plan = cases.plan_sla_tick(case, now, policy_for(config, case), snapshot)
            if plan is None:
                continue
            entries = apply(store, case, plan, now)
        except ConcurrentChange:
            continue
        except Exception as exc:
            if is_outage(exc):
                raise  # the store or broker is away: the next round tries every case again
            # One case that cannot be planned must not stop the round, nor come back
            # first in every round: enough of them would hold up all SLA checks.
            log.exception("SLA check failed for a case", extra={"case_id": case["_id"]})
            metrics.SLA_CHECK_FAILURES.inc()
            store.postpone_sla_check(case["_id"], case["version"], now + retry_after)
            continue
        for event_type, details in plan.events:
            if event_type == events.SLA_WARNING:
                metrics.SLA_WARNINGS.labels(details["sla_clock"]).inc()
            elif event_type == events.SLA_BREACHED:
                metrics.SLA_BREACHES.labels(details["sla_clock"], case.get("town_id") or "unknown").inc()
        published.append((case["_id"], entries))
    return published


def case_query(query, now, area_filter=None):
    """A store filter from the list endpoint's parameters, within the caller's
    area (``area_filter``; ``None``: everywhere)."""
    filters = {key: query[key] for key in ("grid_id", "town_id", "status") if key in query}
    if "assignee" in query:
        filters["assignee.id"] = query["assignee"]
    for flag in ("triage", "awaiting_dispatch"):
        if flag in query:
            filters[flag] = query[flag]
    for key in ("subclass", "major"):
        if key in query:
            filters[key] = query[key]
    if query.get("overdue"):
        filters["status"] = filters.get("status") or {"$in": list(OPEN_STATUSES)}
        filters["$or"] = [
            {"awaiting_response": True, "sla.first_response.due_at": {"$lte": now}},
            {"sla.resolution.due_at": {"$lte": now}},
        ]
    return within(filters, area_filter)


def open_cases_of(worker_id, area_filter=None):
    return within({"assignee.id": worker_id, "status": {"$in": list(OPEN_STATUSES)}}, area_filter)


def within(filters, area_filter):
    return filters if area_filter is None else all_of(filters, area_filter)
