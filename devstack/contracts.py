"""Files generated from the code that others rely on; ``make contracts`` rewrites
them and a test fails when a checked-in copy is stale.

- integration/inbound-request.schema.json  the inbound contract for integrators
- deploy/rabbitmq/definitions.json         every exchange, queue and binding
"""
import json

from devstack.processes import ROOT
from services.intake.schemas import inbound_json_schema
from wangge.topology import rabbitmq_definitions

GENERATED = {
    ROOT / "integration" / "inbound-request.schema.json": inbound_json_schema,
    ROOT / "deploy" / "rabbitmq" / "definitions.json": rabbitmq_definitions,
}


def render(build):
    return json.dumps(build(), indent=2, ensure_ascii=False, sort_keys=True) + "\n"


def main():
    for path, build in GENERATED.items():
        path.write_text(render(build), encoding="utf-8")
        print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
