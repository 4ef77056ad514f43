"""Each service's HTTP API as an OpenAPI 3.1 document, built from what its
``@http`` decorators declare (``wangge.http.Operation``) and its marshmallow
schemas, so the published contract is the code's own.

Served by every service at ``GET /openapi.json``; ``make contracts`` writes the
same documents to ``docs/api/``, with a Markdown reference beside each."""
import inspect
import re
from functools import cache
from http import HTTPStatus
from importlib.metadata import PackageNotFoundError, version

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from nameko.extensions import ENTRYPOINT_EXTENSIONS_ATTR

from wangge.http import MAX_IDEMPOTENCY_KEY_CHARS, ErrorSchema, JsonHttpHandler

OPENAPI_VERSION = "3.1.0"
BEARER = "bearer"
JSON = "application/json"
# werkzeug's <converter:name> (or <name>) in a URL rule
RULE_VARIABLE = re.compile(r"<(?:(?P<converter>\w+)(?:\([^)]*\))?:)?(?P<name>\w+)>")
# werkzeug's string converter: one path segment, not empty
PATH_SEGMENT = {"type": "string", "minLength": 1, "pattern": "^[^/]+$"}

HEADERS = {
    "Idempotency-Key": {
        "description": "Repeats of a request with the same key (a retry after a time-out) get the first result, "
                       "with status 200, instead of creating another.",
        "schema": {"type": "string", "minLength": 1, "maxLength": MAX_IDEMPOTENCY_KEY_CHARS},
    },
}

ERRORS = {
    401: "No bearer token, or one that is not valid (expired, another issuer or audience, a key the identity "
         "provider does not publish); the answer carries `WWW-Authenticate: Bearer`.",
    403: "The token is valid but its roles do not include this operation's permission (`permission` names it), "
         "or the record is outside the caller's area.",
    400: "The request cannot be taken as it is: `fields` names each problem (`body` for a body that is not "
         "a JSON object, too large or nested too deeply).",
    404: "Nothing is known under the path's identifier, or a record the request names is unknown (`fields` says which).",
    409: "The request conflicts with the current state (an illegal status change, a concurrent change, an older "
         "edition); `message` says which; read again and retry.",
    503: "A service this one depends on does not answer; try again shortly.",
}


def http_operations(service_cls):
    """``(function, handler)`` for every ``@http`` entrypoint of the class, by URL then method."""
    found = []
    for _, function in inspect.getmembers(service_cls, inspect.isfunction):
        for entrypoint in getattr(function, ENTRYPOINT_EXTENSIONS_ATTR, ()):
            if isinstance(entrypoint, JsonHttpHandler):
                found.append((function, entrypoint))
    return sorted(found, key=lambda item: (item[1].url, item[1].method))


def openapi_path(url):
    """``/api/v1/cases/<string:case_id>`` → ``/api/v1/cases/{case_id}``."""
    return RULE_VARIABLE.sub(lambda match: "{" + match["name"] + "}", url)


def path_parameters(url):
    parameters = []
    for match in RULE_VARIABLE.finditer(url):
        schema = {"type": "integer"} if match["converter"] == "int" else dict(PATH_SEGMENT)
        parameters.append({"name": match["name"], "in": "path", "required": True, "schema": schema})
    return parameters


def content(representation):
    """A body or response (a schema class, a media type, or ``{media type: schema class or None}``) as OpenAPI content."""
    if isinstance(representation, str):
        representation = {representation: None}
    elif not isinstance(representation, dict):
        representation = {JSON: representation}
    return {
        media_type: {"schema": schema if schema is not None else {"type": "object" if media_type == JSON else "string"}}
        for media_type, schema in representation.items()
    }


def error_statuses(operation):
    implied = {400} if operation.body or operation.query or operation.headers else set()
    if operation.allow is not None and not operation.allow.public:
        implied |= {401, 403}
    return sorted(implied | set(operation.errors))


def operation_object(function, handler):
    operation = handler.operation
    parameters = path_parameters(handler.url)
    if operation.query is not None:
        parameters.append({"in": "query", "schema": operation.query})
    parameters.extend({"name": name, "in": "header", **HEADERS[name]} for name in operation.headers)
    answer = {"operationId": function.__name__, "summary": operation.summary or function.__name__.replace("_", " ")}
    description = docstring(function)
    if description:
        answer["description"] = description
    if parameters:
        answer["parameters"] = parameters
    if operation.body is not None:
        answer["requestBody"] = {"required": True, "content": content(operation.body)}
    if operation.allow is not None:
        answer["x-wangge-permission"] = operation.allow.name
        if not operation.allow.public:
            answer["security"] = [{BEARER: []}]
    responses = {
        str(status): {"description": HTTPStatus(status).phrase, "content": content(representation)}
        for status, representation in sorted(operation.responses.items())
    }
    for status in error_statuses(operation):
        responses.setdefault(str(status), {"description": ERRORS[status], "content": content(ErrorSchema)})
    answer["responses"] = dict(sorted(responses.items()))
    return answer


class SchemaNames:
    """Component names for schema classes: the class name without ``Schema``, one class per name."""

    def __init__(self):
        self.classes = {}

    def __call__(self, schema):
        schema_cls = schema if isinstance(schema, type) else type(schema)
        name = schema_cls.__name__.removesuffix("Schema") or schema_cls.__name__
        if self.classes.setdefault(name, schema_cls) is not schema_cls:
            raise ValueError(f"two schemas would both be published as {name}: {schema_cls} and {self.classes[name]}")
        return name


def build_document(service_cls, title, description):
    names = SchemaNames()
    spec = APISpec(
        title=title, version=package_version(), openapi_version=OPENAPI_VERSION,
        plugins=[MarshmallowPlugin(schema_name_resolver=names)], info={"description": description},
    )
    spec.components.schema("Error", schema=ErrorSchema)
    spec.components.security_scheme(BEARER, {
        "type": "http", "scheme": "bearer", "bearerFormat": "JWT",
        "description": "An access token from the county's OpenID Connect provider (audience `wangge-api`).",
    })
    names(ErrorSchema)
    by_path = {}
    for function, handler in http_operations(service_cls):
        for method in handler.method.split(","):
            by_path.setdefault(openapi_path(handler.url), {})[method.lower()] = operation_object(function, handler)
    for path, operations in by_path.items():
        spec.path(path=path, operations=operations)
    document = spec.to_dict()
    # a schema's docstring says what it is: readers of the document and of the reference see it
    for name, schema in document.get("components", {}).get("schemas", {}).items():
        schema_cls = names.classes.get(name)
        if schema_cls is not None and "__doc__" in vars(schema_cls) and schema_cls.__doc__ and "description" not in schema:
            schema["description"] = docstring(schema_cls)
    return document


@cache
def openapi_document(service_cls):
    """The service's OpenAPI 3.1 document (built once per process)."""
    return build_document(service_cls, f"Wangge {service_cls.name}", docstring(inspect.getmodule(service_cls)))


def docstring(thing):
    """A docstring as CommonMark, which OpenAPI descriptions are: ``code`` becomes `code`."""
    return (inspect.getdoc(thing) or "").replace("``", "`")


def package_version():
    try:
        return version("wangge")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "0.0.0"
