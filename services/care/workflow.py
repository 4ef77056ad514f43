"""Care's operations over the store, the grid directory and intake."""
import logging
import uuid
from collections import Counter
from datetime import timedelta

from marshmallow import ValidationError

from wangge import events
from wangge.errors import ApiError, NotFound
from wangge.logs import mask_name

from services.care import access, schedule, views
from services.care.needs import IntakeUnavailable

log = logging.getLogger(__name__)

# A visit may be recorded a little ahead of the server's clock (a phone's clock is off), no more.
CLOCK_SKEW = timedelta(minutes=5)
RECENT_VISITS = 20
# a change that meets a visit's (or another change's) write reads the resident again, this often
CHANGE_ATTEMPTS = 5


class Conflict(ApiError):
    http_status = 409
    error_code = "conflict"


def short_id(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def existing(document, message):
    if document is None:
        raise NotFound(message)
    return document


def known_grid(directory, grid_id):
    return existing(directory.grid(grid_id), f"No grid {grid_id}.")


def not_in_future(moment, now, field):
    if moment is not None and moment > now + CLOCK_SKEW:
        raise ValidationError({field: ["Must not be in the future."]})


# -- residents ------------------------------------------------------------------------

def register_resident(store, directory, policy, caller, body, now):
    """Store a priority resident, their first due time and its notices."""
    grid = known_grid(directory, body["grid_id"])
    access.require_recorder(caller, grid, body["grid_id"])
    not_in_future(body["last_visited_at"], now, "last_visited_at")
    worker_id = body["worker_id"]
    if worker_id is None:
        worker_id = schedule.responsible_worker(grid, store.residents_per_worker(body["grid_id"]))
    elif worker_id not in {worker["id"] for worker in grid.get("workers") or []}:
        raise ValidationError({"worker_id": [f"Not a worker of grid {body['grid_id']}."]})
    due_at = policy.next_due(body["kinds"], body["last_visited_at"] or now)
    resident = {
        "_id": short_id("CR"), **body, "worker_id": worker_id, "grid_name": grid.get("name"),
        "community_id": grid.get("community_id"), "town_id": grid.get("town_id"),
        "interval_days": policy.interval(body["kinds"]).total_seconds() / 86400,
        "next_visit_due": due_at, "registered_at": now, "registered_by": caller.subject,
    }
    # the due time first: a resident stored without one would never be told about
    store.add_due(schedule.due_document(resident, due_at), schedule.notices(resident, due_at, policy))
    store.insert_resident(resident)
    return resident


def read_resident(store, directory, caller, resident_id):
    """The resident (with their latest visits) as the caller may read them, and the
    reason they read them in full (``None``: masked)."""
    resident = existing(store.get_resident(resident_id), f"No priority resident {resident_id}.")
    reason = access.resident_reader(caller, directory.grid(resident["grid_id"]), resident["grid_id"])
    return resident, store.visits_of(resident_id, RECENT_VISITS), reason


def change_resident(store, directory, policy, caller, resident_id, changes, now):
    """The resident with ``changes`` applied (see ``ResidentChangeSchema``); the caller
    records for their grid, and for the grid they move to."""
    for _ in range(CHANGE_ATTEMPTS):
        resident = existing(store.get_resident(resident_id), f"No priority resident {resident_id}.")
        grid = directory.grid(resident["grid_id"])
        access.require_recorder(caller, grid, resident["grid_id"])
        update = {key: value for key, value in changes.items() if key not in ("grid_id", "worker_id")}
        grid_id = changes.get("grid_id", resident["grid_id"])
        if grid_id != resident["grid_id"]:
            grid = known_grid(directory, grid_id)
            access.require_recorder(caller, grid, grid_id)
            update.update(grid_id=grid_id, grid_name=grid.get("name"), community_id=grid.get("community_id"), town_id=grid.get("town_id"))
        if "worker_id" in changes:
            if changes["worker_id"] not in {worker["id"] for worker in grid.get("workers") or []}:
                raise ValidationError({"worker_id": [f"Not a worker of grid {grid_id}."]})
            update["worker_id"] = changes["worker_id"]
        elif grid_id != resident["grid_id"]:
            update["worker_id"] = schedule.responsible_worker(grid, store.residents_per_worker(grid_id))
        if "kinds" in changes:
            update["interval_days"] = policy.interval(changes["kinds"]).total_seconds() / 86400
        update.update(changed_at=now, changed_by=caller.subject)
        if store.change_resident(resident, update):
            return {**resident, **update}
    raise Conflict(f"Priority resident {resident_id} kept changing while this change was made; try again.")


def end_care(store, directory, caller, resident_id, reason, now):
    """End a resident's care (see ``CareEndingSchema``); asking again returns the same ending."""
    resident = store.get_resident(resident_id)
    if resident is None:
        ending = existing(store.get_ending(resident_id), f"No priority resident {resident_id}.")
        access.require_recorder(caller, directory.grid(ending["grid_id"]), ending["grid_id"])
        return ending, 0
    access.require_recorder(caller, directory.grid(resident["grid_id"]), resident["grid_id"])
    ending = {"_id": resident_id, "grid_id": resident["grid_id"], "community_id": resident.get("community_id"),
              "town_id": resident.get("town_id"), "kinds": resident["kinds"], "registered_at": resident["registered_at"],
              "reason": reason, "ended_at": now, "ended_by": caller.subject}
    return ending, store.end_care(resident, ending, now)


def list_residents(store, directory, caller, query, now, overdue=False):
    """``(residents, total, reason)`` of a grid, or of the county for the command centre and
    departments; ``reason`` is why the caller reads them in full (``None``: masked)."""
    grid_id = query.get("grid_id")
    if grid_id:
        reason = access.resident_reader(caller, directory.grid(grid_id), grid_id)
    elif access.county_role(caller) or caller.has_any(access.MASKED_ROLES):
        reason = access.county_role(caller)
    else:
        raise ValidationError({"grid_id": ["Name the grid: only the command centre and departments list the whole county."]})
    skip = (query["page"] - 1) * query["per_page"]
    found, total = store.find_residents(grid_id, now if overdue else None, skip, query["per_page"])
    return found, total, reason


def resident_view(resident, now, reason):
    return {**views.resident_view(resident, now, reason is not None), "masked": reason is None}


# -- visits ---------------------------------------------------------------------------

def record_visit(store, directory, policy, filing, caller, body, now, idempotency_key=None):
    """``(visit, created)``: the visit stored, the resident's schedule moved on, and each need
    filed with intake; a key seen before returns that visit, filing what it had left."""
    resident = existing(store.get_resident(body["resident_id"]), f"No priority resident {body['resident_id']}.")
    access.require_recorder(caller, directory.grid(resident["grid_id"]), resident["grid_id"])
    not_in_future(body["visited_at"], now, "visited_at")
    if idempotency_key is not None:
        earlier = store.visit_by_idempotency_key(idempotency_key)
        if earlier is not None:
            return file_needs(store, filing, earlier, resident), False
    visit = {
        "_id": short_id("VS"), "resident_id": resident["_id"], "grid_id": resident["grid_id"], "visited_at": body["visited_at"],
        "by": body["by"] or caller.subject, "recorded_by": caller.subject, "notes": body["notes"],
        "needs": [{"text": text, "tracking_no": None, "request_id": None} for text in body["needs"]], "created_at": now,
    }
    if idempotency_key is not None:
        visit["idempotency_key"] = idempotency_key
    if store.insert_visit(visit) is None:  # a concurrent request with the same key won
        return file_needs(store, filing, store.visit_by_idempotency_key(idempotency_key), resident), False
    move_schedule(store, policy, resident, visit)
    return file_needs(store, filing, visit, resident), True


def move_schedule(store, policy, resident, visit):
    """A visit meets the resident's open due time and starts the next interval; a visit
    recorded late, older than the last one, changes nothing."""
    last = resident.get("last_visited_at")
    if last is not None and visit["visited_at"] <= last:
        return
    due = store.open_due(resident["_id"])
    if due is not None and not store.close_due(due, visit["visited_at"], visit["_id"]):
        return  # another visit met it at the same moment and moved the schedule on
    next_due = policy.next_due(resident["kinds"], visit["visited_at"])
    store.add_due(schedule.due_document(resident, next_due), schedule.notices(resident, next_due, policy))
    store.advance_schedule(resident["_id"], visit["visited_at"], next_due)


def file_needs(store, filing, visit, resident):
    """File each need of the visit not filed yet; the visit keeps each request's tracking number."""
    needs = [dict(need) for need in visit["needs"]]
    try:
        for number, need in enumerate(needs):
            if need["tracking_no"] is None:
                needs[number] = filing.file(visit, resident, number, need["text"])
    except IntakeUnavailable as unavailable:
        unavailable.details = {"visit_id": visit["_id"]}  # the visit is kept: send it again with its key
        raise
    finally:
        if needs != visit["needs"]:
            store.record_needs(visit["_id"], needs)
    return {**visit, "needs": needs}


# -- overdue notices ----------------------------------------------------------------------

def notice_event(notice, resident, grid, now):
    worker, head = schedule.notice_recipients(grid, resident.get("worker_id"))
    data = {
        "resident_id": resident["_id"], "resident_name": mask_name(resident["name"]), "kinds": resident["kinds"],
        "kind_names": [schedule.KIND_NAMES[kind] for kind in resident["kinds"]], "grid_id": resident["grid_id"],
        "grid_name": (grid or {}).get("name") or resident.get("grid_name"), "community_id": resident.get("community_id"),
        "town_id": resident.get("town_id"), "due_at": notice["due_at"], "stage": notice["stage"], "worker": worker, "grid_head": head,
    }
    # the notice id is the event id: a repeat after a crash is recognised downstream
    return events.build_event(events.VISIT_OVERDUE, data, event_id=notice["_id"], occurred_at=now)


def publish_overdue(store, directory, publish, now, claim_until, batch):
    """Publish the ``visit_overdue`` notices due now; returns a Counter of (stage, outcome)."""
    published, called_off, outcomes = [], [], Counter()
    try:
        for notice in store.claim_due_notices(now, claim_until, batch):
            resident = store.get_resident(notice["resident_id"])
            if resident is None or resident.get("next_visit_due") != notice["due_at"]:
                called_off.append(notice["_id"])  # visited meanwhile (or no longer cared for)
                outcomes[(notice["stage"], "called_off")] += 1
                continue
            publish(events.VISIT_OVERDUE, notice_event(notice, resident, directory.grid(resident["grid_id"]), now))
            published.append(notice["_id"])
            outcomes[(notice["stage"], "published")] += 1
    finally:
        # what was not published stays claimed until claim_until, then is taken again
        store.finish_notices(published, "published", now)
        store.finish_notices(called_off, "called_off", now)
    return outcomes


# -- volunteers ---------------------------------------------------------------------------

def record_activity(store, directory, caller, body, now, idempotency_key=None):
    """``(activity, created)``: a grid's activity by its people, a community's by its leads."""
    if idempotency_key is not None:
        earlier = store.activity_by_idempotency_key(idempotency_key)
        if earlier is not None:
            return earlier, False
    if body["grid_id"]:
        grid = known_grid(directory, body["grid_id"])
        access.require_recorder(caller, grid, body["grid_id"])
    else:
        grid = existing(directory.area("community", body["community_id"]), f"No community {body['community_id']}.")
        access.require_area_lead(caller, grid, "community", "community_id", body["community_id"])
    activity = {
        "_id": short_id("VA"), **body, "community_id": grid["community_id"], "town_id": grid["town_id"],
        "participant_count": len(body["participants"]), "recorded_by": caller.subject, "created_at": now,
    }
    if idempotency_key is not None:
        activity["idempotency_key"] = idempotency_key
    if store.insert_activity(activity) is None:
        return store.activity_by_idempotency_key(idempotency_key), False
    return activity, True


# -- the public to-do list ----------------------------------------------------------------

def todo_area(directory, caller, town_id, community_id):
    """Check the town (and community) exist, that the community lies in the town, and
    that the caller leads it."""
    if community_id:
        grid = existing(directory.area("community", community_id), f"No community {community_id}.")
        if grid["town_id"] != town_id:
            raise ValidationError({"community_id": [f"Not a community of {town_id}."]})
        access.require_area_lead(caller, grid, "community", "community_id", community_id)
    else:
        grid = existing(directory.area("town", town_id), f"No town {town_id}.")
        access.require_area_lead(caller, grid, "town", "town_id", town_id)


def create_todo(store, directory, caller, body, now):
    todo_area(directory, caller, body["town_id"], body["community_id"])
    item = {
        "_id": short_id("TD"), **body, "promised_by": body["promised_by"].isoformat(), "version": 1,
        "created_at": now, "updated_at": now, "created_by": caller.subject, "updated_by": caller.subject,
        "history": [{"at": now, "status": body["status"], "progress_notes": body["progress_notes"], "by": caller.subject}],
    }
    return store.insert_todo(item)


def update_todo(store, directory, caller, item_id, changes, now):
    item = existing(store.get_todo(item_id), f"No to-do item {item_id}.")
    todo_area(directory, caller, item["town_id"], item.get("community_id"))
    if "promised_by" in changes:
        changes = {**changes, "promised_by": changes["promised_by"].isoformat()}
    changed = {**item, **changes}
    entry = {"at": now, "status": changed["status"], "progress_notes": changed.get("progress_notes") or "", "by": caller.subject}
    if not store.update_todo(item_id, item["version"], {**changes, "updated_at": now, "updated_by": caller.subject}, entry):
        raise Conflict(f"To-do item {item_id} was changed meanwhile; read it again and retry.")
    return store.get_todo(item_id)
