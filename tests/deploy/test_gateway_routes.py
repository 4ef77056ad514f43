"""Every path of every service's API reference reaches that service through the
gateway (deploy/gateway/nginx.conf), as nginx picks locations."""
import json
import re

import pytest

from devstack.web import GATEWAY_CONF, gateway_locations, service_for
from devstack.processes import ROOT

API_DOCUMENTS = sorted((ROOT / "docs" / "api").glob("*.openapi.json"))
# operations' own endpoints stay on each service's port, for Prometheus and orchestrators;
# Alertmanager posts its alerts to notify inside the platform's network
NOT_THROUGH_THE_GATEWAY = re.compile(r"^/(health|metrics|openapi\.json|api/v1/alerts$)")


def documented_paths():
    for document in API_DOCUMENTS:
        service = document.name.split(".")[0]
        for path in json.loads(document.read_text(encoding="utf-8"))["paths"]:
            if not NOT_THROUGH_THE_GATEWAY.match(path):
                yield pytest.param(re.sub(r"\{[^}]+\}", "x1", path), service, id=f"{service}:{path}")


def test_the_api_reference_names_every_service():
    assert {document.name.split(".")[0] for document in API_DOCUMENTS} >= {"intake", "routing", "notify", "study"}


@pytest.mark.parametrize(("path", "service"), documented_paths())
def test_every_documented_path_reaches_its_service_through_the_gateway(path, service):
    locations, _ = gateway_locations(GATEWAY_CONF.read_text())
    assert service_for(path, locations) == service
