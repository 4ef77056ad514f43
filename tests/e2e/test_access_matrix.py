"""Every endpoint × caller, against the five services and real tokens from the
local OpenID Connect provider: anonymous callers get 401 with
``WWW-Authenticate: Bearer`` wherever a token is needed, roles outside the
endpoint's permission get 403 naming it, and its roles get through the gate.
The endpoints and their permissions are read from the services' own
declarations, so a new endpoint is in the matrix the day it is written."""
import re

import pytest
import requests

from services.care.service import CareService
from services.intake.service import IntakeService
from services.notify.service import NotifyService
from services.routing.service import RoutingService
from services.study.service import StudyService
from tests.support.services import authorized_session, running_platform
from wangge.openapi import http_operations
from wangge.permissions import MACHINE_ROLES, STAFF_ROLES

pytestmark = pytest.mark.e2e

SERVICES = {"intake": IntakeService, "routing": RoutingService, "notify": NotifyService, "study": StudyService, "care": CareService}
# One account of each role at the test provider (tests/support/identity.py).
ACCOUNT_OF_ROLE = {
    "grid_worker": "w-zc-nanmen-02-1", "grid_head": "w-zc-nanmen-02-h", "community_lead": "lead-zc-nanmen",
    "town_lead": "lead-zhangcheng", "department": "dept-power", "county_center": "county-center",
    "study_editor": "editor", "county_admin": "county-admin", "operator": "operator",
    "integrator": "integrator-hotline12345", "service": "wangge-services", "alertmanager": "alertmanager",
}


def endpoints():
    for name, service_cls in SERVICES.items():
        for _, handler in http_operations(service_cls):
            for method in handler.method.split(","):
                path = re.sub(r"<(?:\w+:)?(\w+)>", r"unknown-\1", handler.url)
                yield pytest.param(name, method, path, handler.operation.allow, id=f"{name} {method} {handler.url}")


@pytest.fixture(scope="module")
def platform(module_amqp_uri, mongo_uri, tmp_path_factory):
    with running_platform(tuple(SERVICES), amqp_uri=module_amqp_uri, mongo_uri=mongo_uri,
                          log_dir=tmp_path_factory.mktemp("logs")) as started:
        yield {name: services[0] for name, services in started.items()}


def call(session, service, method, path):
    body = {} if method in ("POST", "PUT") else None
    return session.request(method, service.url(path), json=body, timeout=15)


@pytest.mark.parametrize("name, method, path, permission", list(endpoints()))
def test_each_endpoint_lets_in_exactly_the_roles_of_its_permission(platform, name, method, path, permission):
    service = platform[name]
    if permission.public:
        assert call(requests.Session(), service, method, path).status_code not in (401, 403)
        return
    anonymous = call(requests.Session(), service, method, path)
    assert anonymous.status_code == 401, anonymous.text
    assert anonymous.headers["WWW-Authenticate"].startswith("Bearer")
    assert anonymous.json()["error"] == "unauthenticated"
    for role in (*STAFF_ROLES, *MACHINE_ROLES):
        answer = call(authorized_session(ACCOUNT_OF_ROLE[role]), service, method, path)
        if permission.allows({role}):
            # through the gate (a 403 here may still come from the caller's area, never the permission)
            assert answer.status_code != 401, (role, answer.text)
            assert answer.status_code != 403 or "permission" not in answer.json(), (role, answer.text)
        else:
            assert answer.status_code == 403, (role, answer.text)
            assert answer.json()["permission"] == permission.name


@pytest.mark.parametrize("token", ["not-a-jwt", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJjb3VudHktYWRtaW4ifQ."])
def test_tokens_that_are_not_from_the_provider_are_refused(platform, token):
    answer = requests.get(platform["routing"].url("/api/v1/cases"), headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert answer.status_code == 401
    assert answer.json()["error"] == "unauthenticated"
