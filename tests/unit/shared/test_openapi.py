"""The published OpenAPI documents: built from what each ``@http`` declares."""
import pytest
from marshmallow import Schema, fields
from nameko.containers import ServiceContainer

from devstack.api_reference import markdown_reference
from devstack.contracts import HTTP_SERVICES
from wangge.http import JsonHttpHandler, http
from wangge.openapi import SchemaNames, build_document, http_operations, openapi_document, openapi_path


class ThingSchema(Schema):
    """A thing."""

    thing_id = fields.String(required=True)


class ThingQuerySchema(Schema):
    colour = fields.String()


class ThingService:
    name = "things"

    @http("GET", "/things/<string:thing_id>", summary="One thing", query=ThingQuerySchema,
          responses={200: ThingSchema}, errors=(404,))
    def get_thing(self, request, thing_id):
        """Reads one thing."""

    @http("POST", "/things", summary="Make a thing", body=ThingSchema, headers=("Idempotency-Key",),
          responses={201: ThingSchema, 200: ThingSchema})
    def make_thing(self, request):
        pass


def test_werkzeug_rules_become_openapi_paths():
    assert openapi_path("/api/v1/cases/<string:case_id>/notes") == "/api/v1/cases/{case_id}/notes"
    assert openapi_path("/a/<b>/<int:c>") == "/a/{b}/{c}"


def test_the_decorator_keeps_its_description_when_nameko_binds_it():
    container = ServiceContainer(ThingService, {"AMQP_URI": "memory://"})
    [bound] = [e for e in container.entrypoints if isinstance(e, JsonHttpHandler) and e.method == "GET"]
    assert bound.operation.summary == "One thing" and bound.operation.responses == {200: ThingSchema}


def test_an_operation_lists_its_parameters_body_answers_and_errors():
    document = build_document(ThingService, "Things", "")
    get = document["paths"]["/things/{thing_id}"]["get"]
    assert get["description"] == "Reads one thing."
    assert [(p["name"], p["in"], p.get("required")) for p in get["parameters"]] == [("thing_id", "path", True), ("colour", "query", False)]
    assert set(get["responses"]) == {"200", "400", "404"}  # a query can be refused
    assert get["responses"]["404"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
    post = document["paths"]["/things"]["post"]
    assert post["requestBody"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Thing"}
    assert [p["name"] for p in post["parameters"]] == ["Idempotency-Key"]
    assert set(post["responses"]) == {"200", "201", "400"}
    assert document["components"]["schemas"]["Thing"]["description"] == "A thing."


def test_two_schemas_of_one_name_are_refused():
    names = SchemaNames()
    names(ThingSchema)
    with pytest.raises(ValueError, match="Thing"):
        names(type("ThingSchema", (Schema,), {}))


@pytest.mark.parametrize("service_cls", HTTP_SERVICES.values(), ids=list(HTTP_SERVICES))
def test_every_operation_says_what_it_is_and_what_it_answers(service_cls):
    for function, handler in http_operations(service_cls):
        operation = handler.operation
        assert operation.summary, f"{function.__name__}: no summary"
        assert any(200 <= status < 300 for status in operation.responses), f"{function.__name__}: no success answer"
    document = openapi_document(service_cls)
    assert document["openapi"] == "3.1.0" and "/openapi.json" in document["paths"]


@pytest.mark.parametrize("service_cls", HTTP_SERVICES.values(), ids=list(HTTP_SERVICES))
def test_the_reference_lists_every_operation_and_schema(service_cls):
    document = openapi_document(service_cls)
    reference = markdown_reference(document)
    for operations in document["paths"].values():
        for operation in operations.values():
            assert f'<a id="op-{operation["operationId"]}"></a>' in reference
    for name in document["components"]["schemas"]:
        assert f'<a id="schema-{name}"></a>' in reference
