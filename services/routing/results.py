"""Results back to the sender (回单): every status change of a request that another
system sent (a 12345 hotline, say) goes back to that system on the durable topic
exchange ``wangge.outbound``, routing key ``request.<source>.<status>``, in the order
the case changed.

A result travels in the case's outbox with its events, so it is published after the
change is stored, again until the broker confirms it, and never before an earlier
change's (the outbox publishes oldest first and stops at the first failure). Its AMQP
``message_id`` is the id of the ``case_status_changed`` event it comes from: a system
that sees it twice deduplicates on it.
"""
from marshmallow import Schema, fields, validate
from marshmallow_jsonschema import JSONSchema

from wangge.events import CASE_STATUSES
from wangge.logs import redact_people

OUTBOUND = "request_result"  # the outbox entry's kind
# Statuses whose result says how the request was handled.
RESULT_STATUSES = ("resolved", "closed")


class RequestResultSchema(Schema):
    """What a sending system hears of its request."""

    class Meta:
        ordered = True

    message_id = fields.String(required=True, metadata={"description": "The AMQP message_id too: deduplicate on it."})
    source = fields.String(required=True, metadata={"description": "The system that sent the request."})
    external_ref = fields.String(allow_none=True, metadata={"description": "The sender's own reference, as it sent it."})
    tracking_no = fields.String(required=True, metadata={"description": "Wangge's tracking number of the request."})
    status = fields.String(required=True, validate=validate.OneOf(CASE_STATUSES))
    previous_status = fields.String(allow_none=True)
    at = fields.AwareDateTime(required=True, metadata={"description": "When the case changed (routing's clock)."})
    case_version = fields.Integer(required=True, metadata={"description": "Changes of one request in the order they happened."})
    note = fields.String(allow_none=True, metadata={"description": "What the person who changed it wrote."})
    result = fields.String(allow_none=True, metadata={"description": "resolved, closed: how it was handled (the resolution's note)."})
    satisfaction = fields.Integer(allow_none=True, metadata={"description": "closed after the resident's follow-up: 1–5."})
    solved = fields.Boolean(allow_none=True, metadata={"description": "The resident's answer at follow-up, once given."})


def sender_of(case, request_id):
    """``(source, external_ref)`` of the request ``request_id`` linked to ``case`` when
    another system sent it, else ``None``. Intake files a resident's request under its
    channel and a system's under the system's source."""
    for linked in case.get("reporters", []):
        if linked.get("request_id") == request_id and linked.get("source") and linked["source"] != linked.get("channel"):
            return linked["source"], linked.get("external_ref")
    return None


def routing_key(source, status):
    return f"request.{source}.{status}"


def resolution_note(case, event_data):
    if event_data["status"] == "resolved":
        return event_data.get("note")
    resolved = [entry for entry in case.get("timeline", []) if entry.get("kind") == "status" and entry.get("to") == "resolved"]
    return resolved[-1].get("note") if resolved else None


def public_result(case, event_data):
    """The result as residents may read it on their tracking pages (every request of the
    case hears it): the resolution note with every reporter's name of the case and every
    phone number masked; ``None`` unless the case stands resolved or closed."""
    if event_data["status"] not in RESULT_STATUSES:
        return None
    note = resolution_note(case, event_data)
    names = [(linked.get("reporter") or {}).get("name") for linked in case.get("reporters", [])]
    return redact_people(note, names) if note else None


def outbound_entry(case, event, now):
    """The outbox entry of the result ``event`` (a ``case_status_changed``) owes the
    system that sent its request, or ``None``."""
    data = event["data"]
    sender = sender_of(case, data["request_id"])
    if sender is None:
        return None
    source, external_ref = sender
    follow_up = case.get("follow_up") or {}
    result = RequestResultSchema().dump({
        "message_id": event["event_id"], "source": source, "external_ref": external_ref, "tracking_no": data["tracking_no"],
        "status": data["status"], "previous_status": data.get("previous_status"), "at": now, "case_version": data.get("version"),
        "note": data.get("note"),
        "result": resolution_note(case, data) if data["status"] in RESULT_STATUSES else None,
        "satisfaction": follow_up.get("satisfaction") if data["status"] == "closed" else None,
        "solved": follow_up.get("solved") if follow_up else None,
    })
    return {"event_id": f"{event['event_id']}@{OUTBOUND}", "event_type": OUTBOUND, "routing_key": routing_key(source, data["status"]),
            "event": result, "queued_at": now}


def json_schema():
    """The outbound contract as JSON Schema (draft 7), as published in ``integration/``."""
    document = JSONSchema().dump(RequestResultSchema())
    document["title"] = "Wangge request result"
    document["description"] = (
        "Body of a message on the durable topic exchange wangge.outbound, routing key request.<source>.<status>, "
        "for every status change of a request the system <source> sent; each system reads its own queue "
        "wangge.outbound.<source>. UTF-8 JSON, persistent; the AMQP message_id (also in the body) is the idempotency key."
    )
    return document
