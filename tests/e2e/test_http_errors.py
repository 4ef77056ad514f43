"""Whatever a client sends, every service answers JSON: a 4xx naming the problem,
never an HTML page, an empty body or a 500."""
import json
import socket
from urllib.parse import urlsplit

import pytest
import requests

from tests.support.services import running_platform

pytestmark = pytest.mark.e2e

SERVICES = ("intake", "routing", "notify", "study", "care")
# One JSON-body endpoint and one paged listing per service.
# (method, path, who may call it): the body is read only after the caller is let in
JSON_ENDPOINTS = {
    "intake": ("POST", "/api/v1/requests", "county-admin"), "routing": ("PUT", "/api/v1/registry", "county-admin"),
    "notify": ("POST", "/api/v1/alerts", "alertmanager"), "study": ("POST", "/api/v1/contents", "editor"),
    "care": ("POST", "/api/v1/care/residents", "county-admin"),
}
PAGED_LISTINGS = {"routing": ["/api/v1/cases", "/api/v1/grids"], "notify": ["/api/v1/notifications"], "study": ["/api/v1/contents"],
                  "care": ["/api/v1/care/residents"]}
HUGE = "10000000000000000000"


@pytest.fixture(scope="module")
def platform(module_amqp_uri, mongo_uri, tmp_path_factory):
    with running_platform(SERVICES, amqp_uri=module_amqp_uri, mongo_uri=mongo_uri,
                          log_dir=tmp_path_factory.mktemp("logs")) as started:
        yield {name: services[0] for name, services in started.items()}


def assert_json_error(response, status):
    assert response.status_code == status, response.text[:300]
    assert response.headers["Content-Type"].startswith("application/json"), response.headers
    body = response.json()
    assert body["error"] and body["message"]
    return body


@pytest.mark.parametrize("name", SERVICES)
def test_unknown_paths_wrong_methods_and_encoded_slashes_answer_json(platform, name):
    service = platform[name]
    assert_json_error(requests.get(service.url("/no/such/path"), timeout=10), 404)
    wrong_method = assert_json_error(requests.delete(service.url("/health"), timeout=10), 405)
    assert wrong_method["error"] == "method_not_allowed"
    assert_json_error(requests.get(service.url("/api/v1/requests/a%2Fb" if name == "intake" else "/api/v1/x%2Fy"), timeout=10), 404)


@pytest.mark.parametrize("name", SERVICES)
def test_a_url_too_long_answers_json(platform, name):
    body = assert_json_error(requests.get(platform[name].url("/health?pad=" + "x" * 9000), timeout=10), 414)
    assert body["error"] == "uri_too_long"


@pytest.mark.parametrize("name", SERVICES)
def test_a_malformed_request_line_answers_json(platform, name):
    parts = urlsplit(platform[name].base_url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as connection:
        connection.sendall(b"GET /health HTTP/9.9\r\n\r\n")
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    # a request in no HTTP version we speak is answered without a status line (as HTTP/0.9)
    assert json.loads(answer) == {"error": "http_505", "message": "Invalid HTTP version (9.9)"}


@pytest.mark.parametrize("name", SERVICES)
def test_deeply_nested_json_answers_400_naming_the_body(platform, name):
    method, path, caller = JSON_ENDPOINTS[name]
    for depth in (100_000, 100):
        nested = '{"a": ' + "[" * depth + "]" * depth + "}"
        response = platform[name].as_user(caller).request(method, platform[name].url(path), data=nested,
                                                          headers={"Content-Type": "application/json"}, timeout=30)
        body = assert_json_error(response, 400)
        assert "body" in body["fields"], body
    # the service still answers
    assert requests.get(platform[name].url("/health/live"), timeout=5).status_code == 200


@pytest.mark.parametrize("name", sorted(PAGED_LISTINGS))
def test_pages_past_the_limit_answer_400_naming_the_field(platform, name):
    for path in PAGED_LISTINGS[name]:
        body = assert_json_error(platform[name].as_admin.get(platform[name].url(path), params={"page": HUGE}, timeout=10), 400)
        assert "page" in body["fields"]


@pytest.mark.parametrize("moment", ["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00"])
def test_dates_out_of_range_answer_400_naming_the_field(platform, moment):
    intake = platform["intake"]
    filed = requests.post(intake.url("/api/v1/requests"), timeout=10,
                          json={"channel": "web", "text": "路灯坏了", "submitted_at": moment})
    assert "submitted_at" in assert_json_error(filed, 400)["fields"]
    since = intake.as_admin.get(intake.url("/api/v1/sentiment-log"), params={"since": moment}, timeout=10)
    assert "since" in assert_json_error(since, 400)["fields"]
