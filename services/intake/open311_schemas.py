"""What Open311 GeoReport v2 clients send to intake and read back (``open311.py``),
with the standard's parameter and field names; JSON or XML of the same shape."""
from marshmallow import RAISE, Schema, ValidationError, fields, post_load, validate, validates_schema

from wangge.events import phone_number
from wangge.fields import Moment

# Short enough that a query naming all of them stays far below the servers' URL limit (8 KiB)
MAX_IDS = 20
_key = [validate.Length(min=1, max=64), validate.Regexp(r"^[A-Za-z0-9_-]+$", error="Not a key.")]
_jurisdiction = validate.Length(max=64)
_comma_statuses = validate.Regexp(r"^(open|closed)(,(open|closed))*$", error="Give open, closed or open,closed.")
_not_used = "Accepted and not used."


class Open311RequestFormSchema(Schema):
    """``POST requests.{json,xml}``, form-encoded. `description` is the resident's words
    (required here: a request is what someone says); `service_code` a service of
    `services.json`; `api_key` the system's key. `email`, `device_id`, `account_id`,
    `address_id` and `jurisdiction_id` are accepted and not kept (residents are called
    back by phone; one jurisdiction is served)."""

    class Meta:
        unknown = RAISE
        ordered = True

    api_key = fields.String(required=True, validate=_key,
                            metadata={"description": "Your system's Open311 API key (wangge-admin integrators add)."})
    service_code = fields.String(required=True, validate=validate.Length(min=1, max=64))
    description = fields.String(required=True, validate=validate.Length(min=1, max=5000))
    lat = fields.Float(validate=validate.Range(-90, 90), allow_nan=False, metadata={"description": "WGS-84; with `long`."})
    long = fields.Float(validate=validate.Range(-180, 180), allow_nan=False, metadata={"description": "WGS-84; with `lat`."})
    address_string = fields.String(validate=validate.Length(min=1, max=500))
    first_name = fields.String(validate=validate.Length(max=25))
    last_name = fields.String(validate=validate.Length(max=25))
    phone = fields.String(validate=phone_number)
    media_url = fields.Url(schemes={"http", "https"})
    grid_id = fields.String(data_key="attribute[grid_id]", validate=validate.Length(min=1, max=64))
    external_ref = fields.String(data_key="attribute[external_ref]", validate=validate.Length(min=1, max=128),
                                 metadata={"description": "Your own reference; the same one again files nothing more."})
    email = fields.String(validate=validate.Length(max=254), metadata={"description": _not_used})
    device_id = fields.String(validate=validate.Length(max=200), metadata={"description": _not_used})
    account_id = fields.String(validate=validate.Length(max=200), metadata={"description": _not_used})
    address_id = fields.String(validate=validate.Length(max=200), metadata={"description": _not_used})
    jurisdiction_id = fields.String(validate=_jurisdiction, metadata={"description": _not_used})

    @validates_schema(skip_on_field_errors=False)
    def lat_with_long(self, data, **kwargs):
        if ("lat" in data) != ("long" in data):
            missing = "long" if "lat" in data else "lat"
            raise ValidationError("Give lat and long together.", missing)


class Open311QuerySchema(Schema):
    """``GET requests.{json,xml}``. With `service_request_id` (comma-separated, at most
    20) only those requests, whatever else is asked; otherwise your system's requests
    (`api_key` needed) received between `start_date` and `end_date` (at most 90 days
    apart; the last 90 days by default), newest first."""

    class Meta:
        unknown = RAISE

    api_key = fields.String(validate=_key)
    service_request_id = fields.String(validate=[validate.Length(min=1, max=MAX_IDS * 24),
                                                 validate.Regexp(r"^[A-Za-z0-9 ,-]+$", error="Give tracking numbers, comma-separated.")],
                                       metadata={"description": f"Comma-separated, at most {MAX_IDS}."})
    service_code = fields.String(validate=[validate.Length(min=1, max=300),
                                           validate.Regexp(r"^[a-z0-9_ ,]+$", error="Give service codes, comma-separated.")],
                                 metadata={"description": "Comma-separated."})
    start_date = Moment()
    end_date = Moment()
    status = fields.String(validate=_comma_statuses, metadata={"description": "open, closed, or open,closed."})
    jurisdiction_id = fields.String(validate=_jurisdiction, metadata={"description": _not_used})

    @post_load
    def split_lists(self, data, **kwargs):
        for name in ("service_request_id", "service_code", "status"):
            if name in data:
                data[name] = [item.strip() for item in data[name].split(",") if item.strip()]
        if len(data.get("service_request_id", ())) > MAX_IDS:
            raise ValidationError(f"At most {MAX_IDS} ids.", "service_request_id")
        return data


class Open311KeyQuerySchema(Schema):
    """The optional `api_key` of a read (`requests/{id}`): the system that filed it sees its address and place."""

    class Meta:
        unknown = RAISE

    api_key = fields.String(validate=_key)
    jurisdiction_id = fields.String(validate=_jurisdiction, metadata={"description": _not_used})


# -- answers --------------------------------------------------------------------------

class Open311ErrorSchema(Schema):
    """One problem; an error answer is a list of them (`errors` in XML)."""

    class Meta:
        ordered = True

    code = fields.Integer(required=True, metadata={"description": "The HTTP status."})
    description = fields.String(required=True)


class Open311EndpointSchema(Schema):
    class Meta:
        ordered = True

    specification = fields.String(required=True)
    url = fields.String(required=True)
    changeset = fields.String(required=True)
    type = fields.String(required=True)
    formats = fields.List(fields.String(), required=True)


class Open311DiscoverySchema(Schema):
    """Where this Open311 endpoint is and what it speaks."""

    class Meta:
        ordered = True

    changeset = fields.String(required=True)
    contact = fields.String(required=True)
    key_service = fields.String(required=True)
    endpoints = fields.List(fields.Nested(Open311EndpointSchema), required=True)


class Open311ServiceSchema(Schema):
    """A subclass of the taxonomy: `group` is its major class."""

    class Meta:
        ordered = True

    service_code = fields.String(required=True)
    service_name = fields.String(required=True)
    description = fields.String(required=True, allow_none=True)
    metadata = fields.Boolean(required=True)
    type = fields.String(required=True)
    keywords = fields.String(required=True, allow_none=True, metadata={"description": "Comma-separated, as routing's taxonomy has them."})
    group = fields.String(required=True)


class Open311AttributeSchema(Schema):
    class Meta:
        ordered = True

    variable = fields.Boolean(required=True)
    code = fields.String(required=True)
    datatype = fields.String(required=True)
    required = fields.Boolean(required=True)
    order = fields.Integer(required=True)
    datatype_description = fields.String(required=True)
    description = fields.String(required=True)


class Open311ServiceDefinitionSchema(Schema):
    """What a service takes beyond the standard's parameters: `attribute[grid_id]`, `attribute[external_ref]`."""

    class Meta:
        ordered = True

    service_code = fields.String(required=True)
    attributes = fields.List(fields.Nested(Open311AttributeSchema), required=True)


class Open311FiledSchema(Schema):
    """A request filed: its `service_request_id` is the tracking number."""

    class Meta:
        ordered = True

    service_request_id = fields.String(required=True)
    service_notice = fields.String(required=True)
    account_id = fields.String(required=True, allow_none=True)


class Open311TokenSchema(Schema):
    class Meta:
        ordered = True

    service_request_id = fields.String(required=True)
    token = fields.String(required=True)


class Open311ServiceRequestSchema(Schema):
    """A request as Open311 shows it: no reporter; the text with phone numbers and the
    reporter's name masked; `address`, `lat` and `long` only for the system that filed it."""

    class Meta:
        ordered = True

    service_request_id = fields.String(required=True)
    status = fields.String(required=True, validate=validate.OneOf(("open", "closed")))
    status_notes = fields.String(required=True, metadata={"description": "The status in plain words (已受理, 正在办理 …)."})
    service_name = fields.String(required=True, allow_none=True)
    service_code = fields.String(required=True, allow_none=True)
    description = fields.String(required=True)
    agency_responsible = fields.String(required=True, allow_none=True,
                                       metadata={"description": "The grid handling it, or the department it was escalated to."})
    service_notice = fields.String(required=True, allow_none=True)
    requested_datetime = fields.String(required=True)
    updated_datetime = fields.String(required=True)
    expected_datetime = fields.String(required=True, allow_none=True,
                                      metadata={"description": "By the service's SLA (resolution hours from receipt)."})
    address = fields.String(allow_none=True)
    lat = fields.Float(allow_none=True)
    long = fields.Float(allow_none=True)


XML = "text/xml"
JSON = "application/json"
FORM = "application/x-www-form-urlencoded"


def documented(schema, *errors):
    """An Open311 operation's answers for ``@http(responses=…)``: ``schema`` (an instance,
    ``many=True`` for a list) as JSON or XML, and each error status as the standard's error list."""
    answers = {200: {JSON: schema, XML: None}}
    answers.update({status: {JSON: Open311ErrorSchema(many=True), XML: None} for status in (404, *errors)})
    return answers


# -- the systems' keys (admin) ---------------------------------------------------------

class Open311KeyIssuedSchema(Schema):
    """A system's new Open311 API key: shown this once, kept by intake only as a digest."""

    class Meta:
        ordered = True

    source = fields.String(required=True)
    api_key = fields.String(required=True)
    replaced = fields.Boolean(required=True, metadata={"description": "true: the system's previous key no longer works."})


class Open311KeyRevokedSchema(Schema):
    class Meta:
        ordered = True

    source = fields.String(required=True)
    revoked = fields.Boolean(required=True)


class Open311KeySchema(Schema):
    class Meta:
        ordered = True

    source = fields.String(required=True, attribute="_id")
    issued_at = fields.AwareDateTime(required=True)


class Open311KeyListSchema(Schema):
    """The systems holding an Open311 API key (never the keys), by source."""

    items = fields.List(fields.Nested(Open311KeySchema), required=True)
