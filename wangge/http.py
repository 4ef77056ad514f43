"""HTTP entrypoint that speaks JSON, with every error mapped in one place."""
import json
import logging
from datetime import datetime

from marshmallow import ValidationError
from nameko.web.handlers import HttpRequestHandler
from werkzeug.exceptions import ClientDisconnected
from werkzeug.wrappers import Response

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1024 * 1024
MAX_IDEMPOTENCY_KEY_CHARS = 128


class ApiError(Exception):
    """An error the caller can fix. Domain modules subclass it with their own
    ``http_status`` and ``error_code`` (and ``fields`` or ``details``); the
    gateway answers them all the same way and nameko logs them as expected."""

    http_status = 400
    error_code = "bad_request"

    def __init__(self, message, fields=None):
        super().__init__(message)
        self.message = message
        self.fields = fields


class NotFound(ApiError):
    http_status = 404
    error_code = "not_found"


def _json_default(value):
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def json_response(body, status=200, headers=None):
    return Response(
        json.dumps(body, ensure_ascii=False, default=_json_default),
        status=status,
        headers=headers,
        content_type="application/json; charset=utf-8",
    )


def error_body(code, message, fields=None):
    body = {"error": code, "message": message}
    if fields:
        body["fields"] = fields
    return body


def read_body(request, max_bytes=MAX_BODY_BYTES):
    """The raw body, or ``ApiError`` naming ``body``; reads at most ``max_bytes + 1``
    bytes, whatever Content-Length claims."""
    if request.content_length is not None and request.content_length > max_bytes:
        raise ApiError("Request body too large.", {"body": [f"Must be at most {max_bytes} bytes."]})
    try:
        raw = request.stream.read(max_bytes + 1)
    except ClientDisconnected as exc:
        raise ApiError("Request body incomplete.", {"body": ["Client disconnected before sending the whole body."]}) from exc
    if len(raw) > max_bytes:
        raise ApiError("Request body too large.", {"body": [f"Must be at most {max_bytes} bytes."]})
    return raw


def idempotency_key(request):
    """The request's ``Idempotency-Key`` header, ``None`` without one, or
    ``ApiError`` naming it: a client retrying a POST after a time-out sends the
    same key and gets the first result instead of a second resource."""
    key = request.headers.get("Idempotency-Key")
    if key is not None and not 0 < len(key) <= MAX_IDEMPOTENCY_KEY_CHARS:
        raise ApiError("Bad Idempotency-Key header.", {"Idempotency-Key": [f"Must be 1 to {MAX_IDEMPOTENCY_KEY_CHARS} characters."]})
    return key


def read_json_body(request, max_bytes=MAX_BODY_BYTES):
    """The request's JSON object, or ``ApiError`` naming ``body`` as the problem."""
    raw = read_body(request, max_bytes)
    try:
        body = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ApiError("Request body is not JSON.", {"body": [f"Not valid UTF-8 JSON: {exc}"]}) from exc
    if not isinstance(body, dict):
        raise ApiError("Request body must be a JSON object.", {"body": ["Must be a JSON object."]})
    return body


class JsonHttpHandler(HttpRequestHandler):
    """``@http`` whose handlers return dicts (or ``(status, dict)``) and raise
    ``ApiError``/``ValidationError``; clients always get a JSON body."""

    def __init__(self, method, url, expected_exceptions=(ApiError, ValidationError), **kwargs):
        super().__init__(method, url, expected_exceptions=expected_exceptions, **kwargs)

    def response_from_result(self, result):
        if isinstance(result, Response):
            return result
        status, payload = result if isinstance(result, tuple) else (200, result)
        return json_response(payload, status)

    def response_from_exception(self, exc):
        if isinstance(exc, ValidationError):
            return json_response(error_body("validation_failed", "Some fields are invalid.", exc.messages), 400)
        if isinstance(exc, ApiError):
            body = error_body(exc.error_code, str(exc), exc.fields)
            body.update(getattr(exc, "details", None) or {})
            return json_response(body, exc.http_status)
        log.error("unhandled error in HTTP handler", exc_info=exc)
        return json_response(error_body("internal_error", "Something went wrong on our side; it has been logged."), 500)


http = JsonHttpHandler.decorator
