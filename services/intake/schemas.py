"""What comes into intake (HTTP bodies, inbound bus messages) and what goes out."""
from marshmallow import RAISE, Schema, ValidationError, fields, validate
from marshmallow_jsonschema import JSONSchema

from wangge.events import LocationSchema, ReporterSchema
from wangge.fields import Moment

CHANNELS = ("wechat_group", "hotline", "web", "visit", "external")
MAX_TEXT_CHARS = 5000

_identifier = validate.Length(min=1, max=64)
_source_name = validate.Regexp(r"^[a-z0-9_]{1,32}$", error="Use 1 to 32 lower-case letters, digits or underscores.")


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

    source = fields.String(required=True, validate=_source_name, metadata={"description": "The sending system, e.g. hotline12345."})
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


class HistoryEntrySchema(Schema):
    """One status the request has had, in the order routing's case went through them."""

    status = fields.String()
    at = fields.AwareDateTime()
    note = fields.String(allow_none=True)


class MaskedReporterSchema(Schema):
    """The reporter as anyone may see them: 林**, 138****0001."""

    name = fields.String()
    phone = fields.String()


class RequestFiledSchema(Schema):
    """A request filed (201), or the one filed before under the same Idempotency-Key (200)."""

    class Meta:
        ordered = True

    tracking_no = fields.String(required=True, metadata={"description": "The number a resident quotes, e.g. YT-20261129-000004."})
    request_id = fields.String(required=True)
    status = fields.String(required=True)
    url = fields.String(required=True, metadata={"description": "Where the request reads back."})


class RequestViewSchema(Schema):
    """A request as a resident or integrator reads it back."""

    class Meta:
        ordered = True

    tracking_no = fields.String()
    request_id = fields.String(attribute="_id")
    status = fields.String()
    channel = fields.String()
    source = fields.String()
    submitted_at = fields.AwareDateTime()
    received_at = fields.AwareDateTime()
    text = fields.String()
    category = fields.String(allow_none=True)
    grid_id = fields.String(allow_none=True)
    case_id = fields.String(allow_none=True)
    address = fields.String(allow_none=True)
    location = fields.Nested(LocationSchema, allow_none=True)
    reporter = fields.Nested(MaskedReporterSchema, allow_none=True)
    media = fields.List(fields.String())
    external_ref = fields.String(allow_none=True)
    history = fields.List(fields.Nested(HistoryEntrySchema))


class RequestListSchema(Schema):
    """The requests a sender filed under its own reference."""

    items = fields.List(fields.Nested(RequestViewSchema), required=True)


def inbound_json_schema():
    """The inbound contract as JSON Schema (draft 7), as published in ``integration/``."""
    document = JSONSchema().dump(InboundRequestSchema())
    document["title"] = "Wangge inbound request"
    document["description"] = (
        "Body of a message published to the durable topic exchange wangge.inbound with routing key "
        "request.<source>. UTF-8 JSON, content_type application/json, persistent; the AMQP message_id "
        "is the idempotency key."
    )
    return document
