"""Open311 GeoReport v2 (http://wiki.open311.org/GeoReport_v2) over Wangge: what the
standard's clients send and read, mapped to intake's requests and routing's taxonomy.

* A **service** is a subclass of the taxonomy: ``service_code`` its code, ``group``
  its major class, ``keywords`` and the SLA as routing serves them. Its definition
  has two attributes: ``grid_id`` (the grid, when the sender knows it) and
  ``external_ref`` (the sender's own reference).
* A **service request** is a request: ``service_request_id`` is its tracking number
  (filed at once, so it is also the token of ``tokens/{token}``), ``status`` open or
  closed with the status in plain words as ``status_notes``. Never the reporter:
  the text has phone numbers and the reporter's name masked, and the address and
  place are only for the system that filed it.
* Filing needs a system's ``api_key``; intake keeps only its SHA-256 digest.

Plain logic: the service's entrypoints read the form, the store and routing's
taxonomy and hand them here; answers are rendered as JSON or XML from the same data.
"""
import functools
import hashlib
import json
import re
import secrets
import xml.etree.ElementTree as ElementTree
from datetime import timedelta
from urllib.parse import unquote_plus
from zoneinfo import ZoneInfo

from marshmallow import ValidationError
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.wrappers import Response

from wangge.errors import ApiError
from wangge.http import MAX_BODY_BYTES

from services.intake import views
from services.intake.schemas import RequestFieldsSchema
from services.intake.tracking import canonical_tracking_no

SPECIFICATION = "http://wiki.open311.org/GeoReport_v2"
MEDIA_TYPES = {"json": "application/json; charset=utf-8", "xml": "text/xml; charset=utf-8"}
DISCOVERY_FORMATS = ("application/json", "text/xml")
# Handled: the request is done with, whether solved, turned down or merged into another's case.
CLOSED_STATUSES = ("resolved", "closed", "rejected", "merged")
API_KEY_BYTES = 32
# Repeated elements of the XML form, by the element that holds them.
XML_ITEMS = {"services": "service", "service_requests": "request", "attributes": "attribute", "values": "value",
             "errors": "error", "endpoints": "endpoint", "formats": "format"}
MAX_FORM_PARTS = 50

ATTRIBUTES = (
    {"variable": True, "code": "grid_id", "datatype": "string", "required": False, "order": 1,
     "datatype_description": "网格编号，如 YT-ZC-NANMEN-02", "description": "所在网格（知道时填写：直接派到该网格办理）"},
    {"variable": True, "code": "external_ref", "datatype": "string", "required": False, "order": 2,
     "datatype_description": "1 到 128 个字符", "description": "贵系统自己的编号（同一编号再次提交视为重发，只受理一次）"},
)
# Wangge's name of a request field → the Open311 parameter it came from, for errors.
PARAMETER_OF = {"text": "description", "category": "service_code", "address": "address_string", "media": "media_url",
                "grid_id": "attribute[grid_id]", "external_ref": "attribute[external_ref]"}
PARAMETER_OF_PART = {"location": {"lat": "lat", "lon": "long"}, "reporter": {"name": "first_name", "phone": "phone"}}
CJK = re.compile(r"[\u3400-\u9fff]")


class Open311Error(Exception):
    """An answer in the standard's error form: ``[{"code": status, "description": …}]``."""

    def __init__(self, status, *descriptions):
        super().__init__("; ".join(descriptions))
        self.status = status
        self.descriptions = descriptions


# -- answers ----------------------------------------------------------------------

def answer(fmt, root, document, status=200):
    """``document`` as the response body in ``fmt`` (``root`` names the XML's outer element)."""
    if fmt == "xml":
        body = ElementTree.tostring(xml_element(root, document), encoding="utf-8", xml_declaration=True)
    else:
        body = json.dumps(document, ensure_ascii=False)
    return Response(body, status=status, content_type=MEDIA_TYPES[fmt])


def xml_element(tag, value):
    element = ElementTree.Element(tag)
    if isinstance(value, dict):
        element.extend(xml_element(key, item) for key, item in value.items())
    elif isinstance(value, (list, tuple)):
        element.extend(xml_element(XML_ITEMS[tag], item) for item in value)
    elif isinstance(value, bool):
        element.text = "true" if value else "false"
    elif value is not None:
        element.text = str(value)
    return element


def error_answer(fmt, status, descriptions):
    return answer(fmt if fmt in MEDIA_TYPES else "json", "errors",
                  [{"code": status, "description": description} for description in descriptions], status)


def validation_descriptions(messages, prefix=""):
    """``{"lat": ["Not a valid number."]}`` → ``["lat: Not a valid number."]``."""
    if isinstance(messages, dict):
        return [line for key, value in messages.items()
                for line in validation_descriptions(value, f"{prefix}.{key}" if prefix else str(key))]
    if isinstance(messages, (list, tuple)):
        return [line for message in messages for line in validation_descriptions(message, prefix)]
    return [f"{prefix}: {messages}" if prefix else str(messages)]


def answers(handler):
    """An Open311 entrypoint: its ``fmt`` path value (``json`` or ``xml``) decides the
    format of every answer, errors included (the standard's error list, with the HTTP
    status as each error's code)."""

    @functools.wraps(handler)
    def answering(service, request, **path_values):
        fmt = path_values.get("fmt")
        try:
            if fmt not in MEDIA_TYPES:
                raise Open311Error(404, f"No format {fmt!r}: use .json or .xml.")
            check_api_key_given_plainly(request.query_string)
            return handler(service, request, **path_values)
        except Open311Error as error:
            return error_answer(fmt, error.status, error.descriptions)
        except ValidationError as error:
            return error_answer(fmt, 400, validation_descriptions(error.messages))
        except RequestEntityTooLarge:
            return error_answer(fmt, 413, [f"The request body must be at most {MAX_BODY_BYTES} bytes."])
        except ApiError as error:  # a service this depends on does not answer (routing's taxonomy)
            return error_answer(fmt, error.http_status, [str(error)])

    return answering


# -- API keys -----------------------------------------------------------------------

def new_api_key():
    return f"wg311_{secrets.token_urlsafe(API_KEY_BYTES)}"


def check_api_key_given_plainly(raw):
    """``raw``: a query string or form body as sent. The gateway's and intake's logs mask
    the key of a plain ``api_key=``; a key given twice, or under a percent-encoded name
    (``api%5Fkey``) that the form parser decodes all the same, could be one the logs show
    while another is used, so both are refused."""
    names = [part.partition(b"=")[0].decode("latin-1") for part in raw.split(b"&")]
    given = [name for name in names if unquote_plus(name) == "api_key"]
    if len(given) > 1:
        raise Open311Error(400, "api_key: Give it once.")
    if given != ["api_key"] and given:
        raise Open311Error(400, "api_key: Write its name as api_key, not percent-encoded.")


def key_digest(api_key):
    """Keys are 256 random bits: a plain SHA-256 is as good as a slow hash for them,
    and lets the store find the key's system by its digest."""
    return hashlib.sha256(api_key.encode("utf-8")).hexdigest()


# -- discovery and services -----------------------------------------------------------

def discovery(public_url, contact, key_service, changeset):
    return {
        "changeset": changeset, "contact": contact, "key_service": key_service,
        "endpoints": [{"specification": SPECIFICATION, "url": f"{public_url.rstrip('/')}/open311/v2", "changeset": changeset,
                       "type": "production", "formats": list(DISCOVERY_FORMATS)}],
    }


def catalogue(taxonomy):
    """``{service_code: (major class, subclass)}`` of routing's taxonomy (``GET /api/v1/taxonomy``), in its order."""
    return {subclass["code"]: (major, subclass) for major in taxonomy["majors"] for subclass in major["subclasses"]}


def service_entry(major, subclass):
    keywords = subclass.get("keywords") or ()
    return {
        "service_code": subclass["code"], "service_name": subclass["name"], "description": subclass.get("description"),
        "metadata": True, "type": "realtime", "keywords": ", ".join(keywords) if keywords else None, "group": major["name"],
    }


def services(services_by_code):
    return [service_entry(major, subclass) for major, subclass in services_by_code.values()]


def service_definition(services_by_code, service_code):
    if service_code not in services_by_code:
        raise Open311Error(404, f"No service {service_code!r}: GET services.json lists them.")
    return {"service_code": service_code, "attributes": [dict(attribute) for attribute in ATTRIBUTES]}


# -- filing -------------------------------------------------------------------------------

def read_form(request):
    """The form (``application/x-www-form-urlencoded`` or ``multipart/form-data``) as a
    dict, at most ``MAX_BODY_BYTES`` read whatever the client says it sends."""
    request.max_content_length = MAX_BODY_BYTES
    request.max_form_memory_size = MAX_BODY_BYTES
    request.max_form_parts = MAX_FORM_PARTS
    if request.mimetype == "application/x-www-form-urlencoded":
        # kept, so the form is parsed from the same bytes
        check_api_key_given_plainly(request.get_data(cache=True))
    elif len(request.form.getlist("api_key")) > 1:
        raise Open311Error(400, "api_key: Give it once.")
    return request.form.to_dict()


def reporter_name(first_name, last_name):
    """Chinese names are family name first, without a space (last_name 林, first_name 先生: 林先生)."""
    parts = [part for part in (first_name, last_name) if part]
    if any(CJK.search(part) for part in parts):
        return "".join(reversed(parts))
    return " ".join(parts)


def request_fields(params, services_by_code):
    """What intake files for a POST's parameters (``Open311RequestFormSchema`` loaded),
    checked as every channel's request is; errors name the Open311 parameters."""
    if params["service_code"] not in services_by_code:
        raise Open311Error(400, f"service_code: no service {params['service_code']!r}; GET services.json lists them.")
    payload = {"text": params.get("description", ""), "category": params["service_code"]}
    if params.get("address_string"):
        payload["address"] = params["address_string"]
    if params.get("lat") is not None:
        payload["location"] = {"lat": params["lat"], "lon": params["long"]}
    name = reporter_name(params.get("first_name"), params.get("last_name"))
    reporter = {key: value for key, value in (("name", name), ("phone", params.get("phone"))) if value}
    if reporter:
        payload["reporter"] = reporter
    if params.get("media_url"):
        payload["media"] = [params["media_url"]]
    for attribute in ("grid_id", "external_ref"):
        if params.get(attribute):
            payload[attribute] = params[attribute]
    try:
        return RequestFieldsSchema().load(payload)
    except ValidationError as error:
        raise ValidationError(open311_messages(error.messages)) from error


def open311_messages(messages):
    """Errors of intake's request fields, keyed by the Open311 parameters the fields came from."""
    named = {}
    for field, problems in messages.items():
        if field in PARAMETER_OF_PART and isinstance(problems, dict):
            for part, part_problems in problems.items():
                named[PARAMETER_OF_PART[field].get(part, f"{field}.{part}")] = part_problems
        elif field == "media" and isinstance(problems, dict):
            named["media_url"] = [problem for part_problems in problems.values() for problem in part_problems]
        else:
            named[PARAMETER_OF.get(field, field)] = problems
    return named


def idempotency_key(source, header_key, external_ref):
    """A retry files nothing more: the same ``Idempotency-Key`` header, or else the same
    ``external_ref``, from the same system answers the request filed first."""
    if header_key:
        return f"open311:{source}:key:{header_key}"
    if external_ref:
        return f"open311:{source}:ref:{external_ref}"
    return None


def filed_entry(request):
    return {"service_request_id": request["tracking_no"], "service_notice": f"已受理，查询编号 {request['tracking_no']}",
            "account_id": None}


# -- reading requests ---------------------------------------------------------------------

def open311_status(status):
    return "closed" if status in CLOSED_STATUSES else "open"


def statuses_for(open311_statuses):
    """The Wangge statuses behind ``open``/``closed``: ``(operator, statuses)`` for the store,
    or ``None`` when both (or neither) are asked for."""
    wanted = set(open311_statuses or ())
    if wanted == {"closed"}:
        return "$in", list(CLOSED_STATUSES)
    if wanted == {"open"}:
        return "$nin", list(CLOSED_STATUSES)
    return None


def service_code_of(request, services_by_code):
    """The subclass routing classified it into; until then the one it was filed under,
    if that is a service (another channel's ``category`` is the sender's own word)."""
    if request.get("subclass"):
        return request["subclass"]
    return request.get("category") if request.get("category") in services_by_code else None


def agency_responsible(request):
    if request.get("level") == "department" and request.get("department_name"):
        return request["department_name"]
    return request.get("grid_name")


def expected_datetime(request, subclass):
    """When the request should be resolved: the deadline routing holds its case to (as
    its latest case event said, escalation included), else, before routing has said
    or once the case is done, its service's SLA (``resolution_hours`` from its
    receipt) if routing's taxonomy gives one."""
    if request.get("resolution_due_at"):
        return request["resolution_due_at"]
    hours = ((subclass or {}).get("sla") or {}).get("resolution_hours")
    return request["received_at"] + timedelta(hours=hours) if hours else None


def request_entry(request, services_by_code, in_full, timezone_name):
    """A request as Open311 shows it. ``in_full`` (the system that filed it): also the
    address and place. Never the reporter, and the text with phones and name masked."""
    zone = ZoneInfo(timezone_name)
    code = service_code_of(request, services_by_code)
    major_and_subclass = services_by_code.get(code)
    subclass = major_and_subclass[1] if major_and_subclass else None
    expected = expected_datetime(request, subclass)
    entry = {
        "service_request_id": request["tracking_no"],
        "status": open311_status(request["status"]),
        "status_notes": views.status_words(request["status"]),
        "service_name": request.get("subclass_name") or (subclass or {}).get("name"),
        "service_code": code,
        "description": views.redacted_text(request["text"], request.get("reporter")),
        "agency_responsible": agency_responsible(request),
        "service_notice": None,
        "requested_datetime": request["received_at"].astimezone(zone).isoformat(),
        "updated_datetime": (request.get("status_at") or request["received_at"]).astimezone(zone).isoformat(),
        "expected_datetime": expected.astimezone(zone).isoformat() if expected else None,
    }
    if in_full:
        location = request.get("location") or {}
        entry.update({"address": request.get("address"), "lat": location.get("lat"), "long": location.get("lon")})
    return entry


def date_range(start, end, now, max_days):
    """The receipt times a listing covers: the standard's last ``max_days`` days by
    default, and never more than that between ``start_date`` and ``end_date``."""
    span = timedelta(days=max_days)
    if start is None and end is None:
        start, end = now - span, now
    elif start is None:
        start = end - span
    elif end is None:
        end = start + span
    if end < start:
        raise Open311Error(400, "end_date: Must not be before start_date.")
    if end - start > span:
        raise Open311Error(400, f"end_date: At most {max_days} days after start_date.")
    return start, end


def find_requests(store, query, source, now, max_days, limit):
    """The requests a ``GET requests`` names (``Open311QuerySchema`` loaded): by id
    for anyone; otherwise the requests of ``source``, the system whose key was given."""
    if query.get("service_request_id"):
        return store.find_by_tracking_nos({canonical_tracking_no(number) for number in query["service_request_id"]})
    if source is None:
        raise Open311Error(403, "api_key: Listing requests needs your system's api_key; without one, name them by service_request_id.")
    since, until = date_range(query.get("start_date"), query.get("end_date"), now, max_days)
    return store.open311_requests(source, since, until, service_codes=query.get("service_code"),
                                  statuses=statuses_for(query.get("status")), limit=limit)


def base_url(configured, request):
    """The platform's public address as configured, else as the request reached it."""
    if configured:
        return configured
    scheme = request.headers.get("X-Forwarded-Proto", request.scheme)
    return f"{scheme if scheme in ('http', 'https') else 'http'}://{request.host}"
