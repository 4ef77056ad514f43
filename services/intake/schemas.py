"""What comes into intake (HTTP bodies, inbound bus messages) and what goes out."""
from marshmallow import RAISE, Schema, ValidationError, fields, validate
from marshmallow_jsonschema import JSONSchema

from wangge.events import LocationSchema, ReporterSchema
from wangge.fields import Moment
from wangge.integrators import CHANNELS, SOURCE_PATTERN

MAX_TEXT_CHARS = 5000

_identifier = validate.Length(min=1, max=64)
_source_name = validate.Regexp(SOURCE_PATTERN, error="Use 1 to 32 lower-case letters, digits or underscores.")


def _not_blank(value):
    if not value.strip():
        raise ValidationError("Must not be blank.")


class RequestFieldsSchema(Schema):
    """The resident's request as every channel describes it (the inbound contract: docs/architecture.md, integration/inbound-request.schema.json)."""

    class Meta:
        unknown = RAISE  # a misspelt field is an error the sender should see, not silently dropped
        ordered = True

    text = fields.String(
        required=True,
        validate=[validate.Length(min=1, max=MAX_TEXT_CHARS, error="Must be between {min} and {max} characters."), _not_blank],
        metadata={"description": "The resident's own words."},
    )
    category = fields.String(validate=validate.Length(min=1, max=50), metadata={"description": "The sender's category, e.g. 路灯; routing classifies anyway."})
    grid_id = fields.String(validate=_identifier)
    wechat_group_id = fields.String(validate=_identifier)
    address = fields.String(validate=validate.Length(min=1, max=500))
    location = fields.Nested(LocationSchema, metadata={"description": "WGS-84 longitude and latitude."})
    reporter = fields.Nested(ReporterSchema)
    media = fields.List(fields.Url(schemes={"http", "https"}), validate=validate.Length(max=20), metadata={"description": "Links to pictures, audio or video."})
    external_ref = fields.String(validate=validate.Length(min=1, max=128), metadata={"description": "The sender's own reference for this request."})


class HttpRequestSchema(RequestFieldsSchema):
    """``POST /api/v1/requests``."""

    channel = fields.String(required=True, validate=validate.OneOf(CHANNELS))
    source = fields.String(validate=_source_name)
    submitted_at = Moment(metadata={"description": "ISO 8601 with zone; defaults to the time of receipt."})


class InboundRequestSchema(RequestFieldsSchema):
    """A message on the ``wangge.inbound`` exchange (routing key ``request.<source>``)."""

    source = fields.String(required=True, validate=_source_name, metadata={"description": "The sending system, e.g. hotline12345: the <source> of the routing key."})
    submitted_at = Moment(required=True, metadata={"description": "ISO 8601 with zone, e.g. 2026-11-28T09:30:00+08:00."})


class LookupSchema(Schema):
    """``GET /api/v1/requests?source=…&external_ref=…``."""

    source = fields.String(required=True, validate=validate.Length(min=1, max=32))
    external_ref = fields.String(required=True, validate=validate.Length(min=1, max=128))


class SentimentQuerySchema(Schema):
    """``GET /api/v1/sentiment-log?grid_id=…&since=…&limit=…``."""

    grid_id = fields.String(validate=_identifier)
    since = Moment()
    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=500))


class SentimentEntrySchema(Schema):
    """One line of the 民情日志."""

    class Meta:
        ordered = True

    at = fields.AwareDateTime()
    kind = fields.String()
    tracking_no = fields.String()
    grid_id = fields.String(allow_none=True)
    channel = fields.String()
    status = fields.String()
    summary = fields.String(allow_none=True)


class SentimentLogSchema(Schema):
    """The 民情日志, newest first."""

    items = fields.List(fields.Nested(SentimentEntrySchema), required=True)


FULL_VIEW_ONLY = "Full view only (the command centre; an integrator for its own source)."


class HistoryEntrySchema(Schema):
    """One status the request has had, in the order routing's case went through them."""

    class Meta:
        ordered = True

    status = fields.String()
    at = fields.AwareDateTime()
    words = fields.String(metadata={"description": "The status in plain words, as the resident reads it (已受理, 正在办理 …)."})
    note = fields.String(allow_none=True, metadata={"description": f"What the person handling the case wrote. {FULL_VIEW_ONLY}"})
    actor = fields.String(allow_none=True, metadata={"description": f"Who changed the case. {FULL_VIEW_ONLY}"})


class RequestFiledSchema(Schema):
    """A request filed (201), or the one filed before under the same Idempotency-Key (200)."""

    class Meta:
        ordered = True

    tracking_no = fields.String(required=True, metadata={"description": "The number a resident quotes, e.g. YT-20261129-7KQ4-M9XD."})
    request_id = fields.String(required=True)
    status = fields.String(required=True)
    url = fields.String(required=True, metadata={"description": "Where the request reads back."})


def _full(field_cls, *args, description=FULL_VIEW_ONLY, **kwargs):
    return field_cls(*args, metadata={"description": description}, **kwargs)


class RequestViewSchema(Schema):
    """A request read back. Anyone holding the tracking number gets the public view:
    `tracking_no`, `status`, `status_words`, `received_at`, `category`, `category_name`,
    `subclass`, `subclass_name`, `major`, `major_name`, `grid_name`, `text` (phone numbers and the reporter's name masked),
    `result` (once resolved) and `history` (status, time, plain words). The command centre, and an integrator for its own
    source, get the full view: every field, the reporter and the text as filed."""

    class Meta:
        ordered = True

    tracking_no = fields.String()
    status = fields.String()
    status_words = fields.String(metadata={"description": "The status in plain words (已受理, 正在办理 …)."})
    received_at = fields.AwareDateTime()
    category = fields.String(allow_none=True, metadata={"description": "null until routing has classified the request."})
    category_name = fields.String(allow_none=True, metadata={"description": "The name of its class (the subclass's)."})
    subclass = fields.String(allow_none=True, metadata={"description": "The taxonomy's subclass code; null until routing has classified it."})
    subclass_name = fields.String(allow_none=True)
    major = fields.String(allow_none=True, metadata={"description": "The subclass's major class code."})
    major_name = fields.String(allow_none=True)
    grid_name = fields.String(allow_none=True, metadata={"description": "The grid handling it; null until routing has located it."})
    text = fields.String(metadata={"description": "The resident's words; in the public view with phone numbers and the reporter's name masked."})
    result = fields.String(allow_none=True, metadata={
        "description": "What was done, as the worker who resolved it wrote it, with every phone number and every "
                       "reporter's name of the case masked; null until resolved and after a reopening."})
    history = fields.List(fields.Nested(HistoryEntrySchema))
    request_id = _full(fields.String, attribute="_id")
    channel = _full(fields.String)
    source = _full(fields.String)
    submitted_at = _full(fields.AwareDateTime)
    grid_id = _full(fields.String, allow_none=True)
    case_id = _full(fields.String, allow_none=True)
    address = _full(fields.String, allow_none=True)
    location = _full(fields.Nested, LocationSchema, allow_none=True)
    reporter = _full(fields.Nested, ReporterSchema, allow_none=True)
    media = _full(fields.List, fields.String())
    external_ref = _full(fields.String, allow_none=True)


class RequestListSchema(Schema):
    """The requests a sender filed under its own reference."""

    items = fields.List(fields.Nested(RequestViewSchema), required=True)


def inbound_json_schema():
    """The inbound contract as JSON Schema (draft 7), as published in ``integration/``."""
    document = JSONSchema().dump(InboundRequestSchema())
    document["title"] = "Wangge inbound request"
    document["description"] = (
        "Body of a message published to the durable topic exchange wangge.inbound with routing key "
        "request.<source>; source must be the routing key's. UTF-8 JSON, content_type application/json, "
        "persistent; the AMQP message_id is the idempotency key among the sending system's own messages."
    )
    return document


class WeComCallbackQuerySchema(Schema):
    """What WeCom puts in the query of every callback to the grid group's robot."""

    msg_signature = fields.String(required=True, validate=validate.Length(min=1, max=64),
                                  metadata={"description": "SHA-1 over the robot's token, timestamp, nonce and the ciphertext, in hex."})
    timestamp = fields.String(required=True, validate=validate.Regexp(r"^\d{1,20}$", error="Must be seconds since the epoch."))
    nonce = fields.String(required=True, validate=validate.Length(min=1, max=64))


class WeComVerifyQuerySchema(WeComCallbackQuerySchema):
    """WeCom's check of the callback URL when the robot's settings are saved."""

    echostr = fields.String(required=True, validate=validate.Length(min=1, max=4096),
                            metadata={"description": "Encrypted text: the answer is its plaintext."})
