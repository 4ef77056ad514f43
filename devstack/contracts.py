"""Files generated from the code that others rely on; ``make contracts`` rewrites
them and a test fails when a checked-in copy is stale.

- integration/inbound-request.schema.json  the inbound contract for integrators
- integration/outbound-result.schema.json  the results they get back
- deploy/rabbitmq/definitions.json         every exchange, queue and binding
- docs/api/<service>.openapi.json          each service's HTTP API (OpenAPI 3.1), as it serves it at /openapi.json
- docs/api/<service>.md                    the same, as a reference to read
- README.md, between the permissions markers  who may do what (wangge/permissions.py)
"""
import json

from devstack.api_reference import markdown_reference
from devstack.processes import ROOT
from services.care.service import CareService
from services.intake.schemas import inbound_json_schema
from services.routing.results import json_schema as outbound_json_schema
from services.intake.service import IntakeService
from services.notify.service import NotifyService
from services.routing.service import RoutingService
from services.study.service import StudyService
from wangge.openapi import openapi_document
from wangge.permissions import markdown_table
from wangge.topology import rabbitmq_definitions

API_DOCS = ROOT / "docs" / "api"
HTTP_SERVICES = {cls.name: cls for cls in (IntakeService, RoutingService, NotifyService, StudyService, CareService)}


def as_json(build):
    return lambda: json.dumps(build(), indent=2, ensure_ascii=False, sort_keys=True) + "\n"


README = ROOT / "README.md"
PERMISSIONS_START, PERMISSIONS_END = "<!-- permissions:start -->", "<!-- permissions:end -->"


def readme_with_permission_table():
    """README.md with the permission table between its markers rendered anew."""
    text = README.read_text(encoding="utf-8")
    before, rest = text.split(PERMISSIONS_START, 1)
    _, after = rest.split(PERMISSIONS_END, 1)
    return f"{before}{PERMISSIONS_START}\n{markdown_table()}\n{PERMISSIONS_END}{after}"


def openapi_file(service_name):
    return API_DOCS / f"{service_name}.openapi.json"


GENERATED = {
    ROOT / "integration" / "inbound-request.schema.json": as_json(inbound_json_schema),
    ROOT / "integration" / "outbound-result.schema.json": as_json(outbound_json_schema),
    ROOT / "deploy" / "rabbitmq" / "definitions.json": as_json(rabbitmq_definitions),
    README: readme_with_permission_table,
}
for _name, _cls in HTTP_SERVICES.items():
    GENERATED[openapi_file(_name)] = as_json(lambda cls=_cls: openapi_document(cls))
    GENERATED[API_DOCS / f"{_name}.md"] = lambda cls=_cls: markdown_reference(openapi_document(cls))


def main():
    for path, render in GENERATED.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render(), encoding="utf-8")
        print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
