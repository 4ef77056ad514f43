"""Filing a request and keeping its tracking view current: plain logic over the store.

A request is stored with its announcement *pending* before anything is
published; it is marked announced only after ``request_received`` is confirmed
by the broker. Whatever fails in between, the pending timer announces it again,
so no accepted request can miss routing (routing treats a repeat as a no-op).
"""
import uuid
from dataclasses import dataclass
from datetime import timedelta

from wangge import events

from services.intake.storage import PENDING, TrackingNumberTaken
from services.intake.tracking import new_tracking_no
from services.intake.views import redacted_text

SENTIMENT_SUMMARY_CHARS = 140
# 40 random bits a day: a second draw is already rare beyond belief; five in a row means a bug.
TRACKING_NUMBER_DRAWS = 5
# what the request mirrors of its case, as routing's events say it
CASE_FIELDS = ("case_id", "grid_id", "grid_name", "category", "category_name", "subclass", "subclass_name", "major", "major_name",
               "level")
OPTIONAL_FIELDS = ("category", "grid_id", "wechat_group_id", "address", "location", "reporter", "external_ref")


# Changes of one case recorded at once meet in the request: the one that lost reads again.
STATUS_WRITE_ATTEMPTS = 5


class StatusChangedMeanwhile(Exception):
    """A request changed under every attempt to record a change (retried later)."""


@dataclass(frozen=True)
class Filing:
    request: dict
    created: bool  # False when the idempotency key had been seen before


def new_request_document(fields, *, tracking_no, channel, source, idempotency_key, now, claim_for):
    document = {
        "_id": uuid.uuid4().hex,
        "tracking_no": tracking_no,
        "channel": channel,
        "source": source,
        "submitted_at": fields.get("submitted_at") or now,
        "received_at": now,
        "text": fields["text"],
        "media": fields.get("media", []),
        "status": "received",
        "status_at": now,
        "case_id": None,
        "grid_name": None,
        "category_name": None,
        "history": [{"status": "received", "at": now, "note": f"受理 · received via {channel}", "event_id": None}],
        # next_attempt_at lies ahead: the worker that stores the request announces
        # it at once; the timer only picks it up if that worker fails to.
        "announce": {"state": PENDING, "attempts": 0, "next_attempt_at": now + claim_for, "event_id": uuid.uuid4().hex},
    }
    for name in OPTIONAL_FIELDS:
        document[name] = fields.get(name)
    document["idempotency_key"] = idempotency_key or f"auto:{document['_id']}"
    return document


def file_request(store, fields, *, channel, source, idempotency_key, now, tracking, claim_for):
    """Store a request once per idempotency key and return it. The insert itself finds
    a key used before (its unique index): a redelivery costs a refused insert and a
    read, a new request, the common case, no read at all."""
    for _ in range(TRACKING_NUMBER_DRAWS):
        document = new_request_document(
            fields,
            tracking_no=new_tracking_no(tracking["PREFIX"], now, tracking["TIMEZONE"]),
            channel=channel,
            source=source,
            idempotency_key=idempotency_key,
            now=now,
            claim_for=claim_for,
        )
        try:
            stored = store.insert_request(document)
        except TrackingNumberTaken:
            continue
        if stored is None:  # the key was used before, or by a concurrent delivery
            return Filing(store.find_by_idempotency_key(idempotency_key), created=False)
        return Filing(stored, created=True)
    raise TrackingNumberTaken(f"{TRACKING_NUMBER_DRAWS} tracking numbers drawn in a row were all taken")


def request_received_event(request):
    data = {"request_id": request["_id"], **{key: request.get(key) for key in (
        "tracking_no", "channel", "source", "submitted_at", "received_at", "text", "media",
        "category", "grid_id", "wechat_group_id", "address", "location", "reporter", "external_ref",
    )}}
    return events.build_event(
        events.REQUEST_RECEIVED, data,
        event_id=request["announce"]["event_id"], occurred_at=request["received_at"],
    )


def received_log_entry(request):
    return {
        "_id": f"{request['_id']}:received",
        "at": request["received_at"],
        "kind": "request_received",
        "request_id": request["_id"],
        "tracking_no": request["tracking_no"],
        "grid_id": request.get("grid_id"),
        "channel": request["channel"],
        "summary": redacted_text(request["text"], request.get("reporter"))[:SENTIMENT_SUMMARY_CHARS],
    }


def announce(store, publish, request, now):
    """Log the request in the sentiment log, publish ``request_received``, mark it
    announced. Each step is idempotent, so a repeat after a failure is harmless."""
    store.log_sentiment(received_log_entry(request))
    publish(events.REQUEST_RECEIVED, request_received_event(request))
    store.mark_announced(request["_id"], now)


def apply_case_status(store, envelope):
    """Mirror a routing case change into the request; ``False`` if the request is unknown."""
    change = envelope["data"]
    entry = {
        "status": change["status"],
        "at": change["at"],
        "note": change.get("note"),
        "actor": change.get("actor"),
        "event_id": envelope["event_id"],
        "case_version": change.get("version"),
    }
    case_fields = {key: change.get(key) for key in CASE_FIELDS}
    # who answers for it at the department level (Open311's agency_responsible)
    case_fields["department_name"] = (change.get("department") or {}).get("name")
    # what follows the latest change of the case, null included: its deadline now, and its result
    latest = {"resolution_due_at": change.get("resolution_due_at"), "result": change.get("result")}
    if entry["case_version"] is not None:
        recorded, placed = store.record_case_change(change["tracking_no"], entry, case_fields, latest)
        if not recorded:
            return False
        if placed:
            # the request's earlier entries belong to the grid routing found for it
            store.place_sentiment_entries(change["request_id"], change["grid_id"])
    elif not record_unversioned_change(store, change, entry, case_fields, latest):
        return False
    store.log_sentiment({
        "_id": envelope["event_id"],
        "at": change["at"],
        "kind": "case_status_changed",
        "request_id": change["request_id"],
        "tracking_no": change["tracking_no"],
        "grid_id": change.get("grid_id"),
        "status": change["status"],
        "summary": change.get("note"),
    })
    return True


def record_unversioned_change(store, change, entry, case_fields, latest):
    """A change from routing before its events carried the case version, planned from a read
    of the request (its earlier entries placed in the change's grid first); ``False`` if there
    is no such request."""
    for _ in range(STATUS_WRITE_ATTEMPTS):
        request = store.request_status(change["tracking_no"])
        if request is None:
            return False
        if change.get("grid_id") and change["grid_id"] != request.get("grid_id"):
            store.place_sentiment_entries(change["request_id"], change["grid_id"])
        if store.record_case_status(request, entry, case_fields, latest):
            return True
    raise StatusChangedMeanwhile(f"{change['tracking_no']} changed {STATUS_WRITE_ATTEMPTS} times while this change was recorded")


def announce_claim(config):
    return timedelta(seconds=float(config["ANNOUNCE"]["CLAIM_SECONDS"]))
