"""HTTP entrypoint that speaks JSON, with every error mapped in one place.

Every answer is JSON, errors included: the handlers' own (``ApiError``,
``ValidationError``), the router's (unknown path, wrong method) and the HTTP
server's (a malformed request, a URL too long)."""
import json
import logging
from urllib.parse import urlsplit
from dataclasses import dataclass, field
from datetime import datetime

import eventlet.wsgi
from eventlet import tpool
from marshmallow import INCLUDE, Schema, ValidationError, fields
from nameko.web.handlers import HttpRequestHandler
from nameko.web.server import HttpOnlyProtocol, WebServer, WsgiApp
from werkzeug.exceptions import ClientDisconnected, HTTPException
from werkzeug.wrappers import Request, Response

from wangge.auth import Authenticator
from wangge.errors import ApiError, NotFound  # noqa: F401 (services import them from here too)

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1024 * 1024
MAX_IDEMPOTENCY_KEY_CHARS = 128
# Deeper than any body we accept; deeper still and parsing or storing it would fail.
MAX_JSON_DEPTH = 32
# Bodies from this size on are parsed off the event loop.
OFF_LOOP_BYTES = 256 * 1024


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


class ErrorSchema(Schema):
    """Every error answer: ``error``, a code to branch on; ``message``, for people; ``fields``, what to fix."""

    class Meta:
        unknown = INCLUDE  # some errors add what the client needs to decide (a conflict's ``current_status``)
        ordered = True

    error = fields.String(required=True, metadata={"description": "A stable code, e.g. validation_failed, not_found, concurrent_change."})
    message = fields.String(required=True)
    fields_ = fields.Dict(
        data_key="fields", keys=fields.String(),
        metadata={"description": "Each problem by field, as a list of messages (nested objects name the parts of a nested field)."},
    )


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


def json_depth(value):
    """How deeply ``value`` nests lists and objects (without recursion: it may be deep)."""
    deepest, pending = 0, [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict):
            item = list(item.values())
        if isinstance(item, list):
            deepest = max(deepest, depth)
            pending.extend((child, depth + 1) for child in item if isinstance(child, (dict, list)))
    return deepest


def read_json_body(request, max_bytes=MAX_BODY_BYTES):
    """The request's JSON object, or ``ApiError`` naming ``body`` as the problem."""
    raw = read_body(request, max_bytes)
    too_deep = ApiError("Request body is nested too deeply.", {"body": [f"Must nest at most {MAX_JSON_DEPTH} levels."]})
    try:
        text = raw.decode("utf-8")
        # Parsing megabytes holds the process's only event loop for seconds: do it
        # in a native thread, so /health and other requests keep being answered.
        body = json.loads(text) if len(raw) < OFF_LOOP_BYTES else tpool.execute(json.loads, text)
    except RecursionError as exc:
        raise too_deep from exc
    except (UnicodeDecodeError, ValueError) as exc:
        raise ApiError("Request body is not JSON.", {"body": [f"Not valid UTF-8 JSON: {exc}"]}) from exc
    if not isinstance(body, dict):
        raise ApiError("Request body must be a JSON object.", {"body": ["Must be a JSON object."]})
    if json_depth(body) > MAX_JSON_DEPTH:
        raise too_deep
    try:
        # JSON may escape half a UTF-16 pair ("\ud800"); no text holds one, and the store cannot encode it
        json.dumps(body, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ApiError("Request body is not valid Unicode.", {"body": ["Strings must not hold unpaired surrogates (\\ud800-\\udfff)."]}) from exc
    return body


def http_error_response(exc):
    """A werkzeug ``HTTPException`` (no route, wrong method, …) as our JSON error."""
    code = (exc.name or "error").lower().replace(" ", "_")
    headers = [(name, value) for name, value in exc.get_headers() if name.lower() == "allow"]
    new_url = getattr(exc, "new_url", None)  # werkzeug's redirect (e.g. a doubled slash)
    if new_url:
        # relative, so the client's Host header never comes back in it
        parts = urlsplit(new_url)
        headers.append(("Location", parts.path + (f"?{parts.query}" if parts.query else "")))
        return json_response(error_body(code, "The resource is at another path."), exc.code, headers)
    return json_response(error_body(code, exc.description or exc.name), exc.code or 500, headers)


class JsonWsgiApp(WsgiApp):
    """nameko's WSGI app, answering the router's errors in JSON instead of HTML."""

    def __call__(self, environ, start_response):
        request = Request(environ, shallow=True)  # as nameko's: the handler unsets it
        try:
            provider, request.path_values = self.url_map.bind_to_environ(environ).match()
            response = provider.handle_request(request)
        except HTTPException as exc:
            response = http_error_response(exc)
        return response(environ, start_response)


class JsonProtocol(HttpOnlyProtocol):
    """The HTTP server's own errors (a malformed request line, say) as JSON too."""

    def send_error(self, code, message=None, explain=None):
        body = json.dumps(error_body(f"http_{code}", message or explain or "Bad request.")).encode()
        self.close_connection = True
        self.send_response(code, message)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


_URL_TOO_LONG = json.dumps(error_body("uri_too_long", "The URL is too long.")).encode()
# eventlet answers an over-long request line with these bytes, before any handler.
eventlet.wsgi.RESPONSE_414 = (
    b"HTTP/1.0 414 Request URI Too Long\r\nConnection: close\r\n"
    b"Content-Type: application/json; charset=utf-8\r\n"
    b"Content-Length: %d\r\n\r\n%s" % (len(_URL_TOO_LONG), _URL_TOO_LONG)
)


class JsonWebServer(WebServer):
    def get_wsgi_app(self):
        return JsonWsgiApp(self)

    def get_wsgi_server(self, sock, wsgi_app, protocol=JsonProtocol, debug=False):
        return super().get_wsgi_server(sock, wsgi_app, protocol=protocol, debug=debug)


@dataclass(frozen=True, eq=False)
class Operation:
    """What an HTTP entrypoint takes and answers, as its ``@http`` declares it;
    ``wangge.openapi`` publishes it.

    ``body`` and each value of ``responses`` are a marshmallow schema class (JSON),
    a media type (``"text/plain"``), or ``{media type: schema class or None}``.
    A 400 is implied by ``body``, ``query`` or ``headers``; ``errors`` names the
    other error statuses the operation answers (404, 409, 503 …)."""

    summary: str | None = None
    body: object = None
    query: type | None = None
    headers: tuple = ()
    responses: dict = field(default_factory=dict)
    errors: tuple = ()
    allow: object = None  # a wangge.permissions.Permission: who may call it


class JsonHttpHandler(HttpRequestHandler):
    """``@http`` whose handlers return dicts (or ``(status, dict)``) and raise
    ``ApiError``/``ValidationError``; clients always get a JSON body.

    The keyword arguments after the URL describe the operation (see
    :class:`Operation`). nameko builds every extension again with the same
    arguments when it binds it to a container, so they are taken here."""

    server = JsonWebServer()
    authenticator = Authenticator()

    def __init__(self, method, url, expected_exceptions=(ApiError, ValidationError), *, allow=None,
                 summary=None, body=None, query=None, headers=(), responses=None, errors=(), **kwargs):
        super().__init__(method, url, expected_exceptions=expected_exceptions, **kwargs)
        self.operation = Operation(summary, body, query, tuple(headers), dict(responses or {}), tuple(errors), allow)

    def setup(self):
        if self.operation.allow is None:
            # an endpoint nobody decided about is a hole: refuse to start instead
            raise ValueError(f"{self.method} {self.url} names no permission (allow=…)")
        super().setup()

    def handle_request(self, request):
        """Who calls is checked before any worker runs: the handler finds the
        verified caller (or ``None`` on a public endpoint) as ``request.caller``."""
        try:
            request.caller = self.authenticator.caller_for(request, self.operation.allow)
        except ApiError as exc:
            return self.response_from_exception(exc)
        return super().handle_request(request)

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
            return json_response(body, exc.http_status, exc.headers)
        if isinstance(exc, HTTPException):
            return http_error_response(exc)
        log.error("unhandled error in HTTP handler", exc_info=exc)
        return json_response(error_body("internal_error", "Something went wrong on our side; it has been logged."), 500)


http = JsonHttpHandler.decorator
