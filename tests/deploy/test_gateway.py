"""The gateway's own answers, from a real nginx running deploy/gateway/nginx.conf
(only the listening port and the upstream addresses changed for this machine).

Two gateways: one whose services are all away (a local port nobody listens on), and
one whose every upstream is a recorder, to see exactly what reaches the services and
Keycloak, and what does not."""
import http.client
import json
import re
import shutil
import subprocess
import threading
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

from tests.support.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(shutil.which("nginx") is None, reason="nginx is installed by `make tools`")


@contextmanager
def running_gateway(work, upstream):
    port = free_port()
    config = (ROOT / "deploy/gateway/nginx.conf").read_text()
    config = config.replace("listen 8080;", f"listen 127.0.0.1:{port};")
    # no Docker DNS here: every upstream is the given local address
    config = re.sub(r"set \$(\w+) +\w+:\d+;", rf"set $\1 {upstream};", config)
    (work / "nginx.conf").write_text(config)
    (work / "logs").mkdir()
    process = subprocess.Popen(
        ["nginx", "-p", str(work), "-c", str(work / "nginx.conf"),
         "-g", f"daemon off; master_process off; user root; pid {work}/nginx.pid; error_log {work}/logs/error.log;"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 15
    while True:
        try:
            requests.get(base + "/health", timeout=1)
            break
        except requests.ConnectionError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"nginx did not start: {process.stderr.read().decode()}")
            time.sleep(0.1)
    try:
        yield base
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    with running_gateway(tmp_path_factory.mktemp("gateway"), f"127.0.0.1:{free_port()}") as base:
        yield base


class Recorder(ThreadingHTTPServer):
    """Every request that reaches an upstream: method, path as received, headers."""

    def __init__(self):
        self.seen = []
        super().__init__(("127.0.0.1", 0), RecordingHandler)


class RecordingHandler(BaseHTTPRequestHandler):
    def _answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        self.server.seen.append({"method": self.command, "path": self.path, "headers": dict(self.headers)})
        body = b'{"upstream": true}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = _answer

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def recorder():
    server = Recorder()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def recorded_gateway(tmp_path_factory, recorder):
    with running_gateway(tmp_path_factory.mktemp("recorded-gateway"), f"127.0.0.1:{recorder.server_address[1]}") as base:
        yield base


def raw(base, method, path, *, source="127.0.0.1", headers=None, body=None):
    """A request with the path exactly as written (requests would normalise dot
    segments), from the given local address; the status, headers and body."""
    port = int(base.rsplit(":", 1)[1])
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10, source_address=(source, 0))
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def json_error(response, status):
    assert response.status_code == status
    assert response.headers["Content-Type"].startswith("application/json")
    return response.json()


def test_the_configuration_is_valid(tmp_path):
    (tmp_path / "logs").mkdir()
    checked = subprocess.run(["nginx", "-t", "-p", str(tmp_path), "-c", str(ROOT / "deploy/gateway/nginx.conf"),
                              "-g", f"pid {tmp_path}/nginx.pid; error_log {tmp_path}/error.log;"],
                             capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr


def test_unknown_paths_answer_json(gateway):
    assert json_error(requests.get(gateway + "/wp-admin", timeout=5), 404)["error"] == "not_found"


def test_bodies_are_limited_per_endpoint(gateway):
    two_megabytes = b"{" + b" " * (2 * 1024 * 1024) + b"}"
    refused = json_error(requests.post(gateway + "/api/v1/requests", data=two_megabytes, timeout=10), 413)
    assert "body" in refused["fields"]
    # the registry may be larger: it gets through to routing (which is away here)
    passed_on = requests.put(gateway + "/api/v1/registry", data=two_megabytes, timeout=10)
    assert json_error(passed_on, 503)["error"] == "unavailable"


def test_a_url_too_long_answers_json(gateway):
    assert json_error(requests.get(gateway + "/api/v1/requests?pad=" + "x" * 20_000, timeout=5), 414)["error"] == "uri_too_long"


# -- filing is limited per client -------------------------------------------------------

FILING = json.dumps({"channel": "web", "text": "路灯坏了"}).encode()
ENOUGH_TO_EXHAUST = 200  # the burst allowance is 20, refilled at one every 3 s


def file_until_refused(gateway, source, headers=None):
    """File from ``source`` until the gateway refuses; the statuses seen on the way."""
    statuses = []
    for _ in range(ENOUGH_TO_EXHAUST):
        status, response_headers, body = raw(gateway, "POST", "/api/v1/requests", source=source,
                                             headers={"Content-Type": "application/json", **(headers or {})}, body=FILING)
        statuses.append(status)
        if status == 429:
            return statuses, response_headers, body
    raise AssertionError(f"{ENOUGH_TO_EXHAUST} filings from {source} were never limited: {sorted(set(statuses))}")


def test_a_burst_of_filings_from_one_address_is_answered_429_in_json(gateway):
    statuses, headers, body = file_until_refused(gateway, "127.0.0.2")
    # the first ones went on to intake (away here: 503), then the gateway said no
    assert set(statuses[:-1]) == {503} and len(statuses) > 1
    assert headers["Content-Type"].startswith("application/json")
    assert json.loads(body)["error"] == "too_many_requests"
    assert int(headers["Retry-After"]) > 0


def test_the_limit_is_per_address_and_for_filing_only(gateway):
    file_until_refused(gateway, "127.0.0.3")
    # the same address may still track its requests,
    assert raw(gateway, "GET", "/api/v1/requests/YT-20261129-000004", source="127.0.0.3")[0] == 503
    # callers with a token have an allowance of their own,
    assert raw(gateway, "POST", "/api/v1/requests", source="127.0.0.3", body=FILING,
               headers={"Authorization": "Bearer any", "Content-Type": "application/json"})[0] == 503
    # and another address files as before
    assert raw(gateway, "POST", "/api/v1/requests", source="127.0.0.4", body=FILING,
               headers={"Content-Type": "application/json"})[0] == 503


def test_callers_with_a_token_are_limited_too(gateway):
    statuses, headers, body = file_until_refused(gateway, "127.0.0.5", headers={"Authorization": "Bearer any"})
    assert len(statuses) > 20  # a larger allowance than anonymous filing
    assert json.loads(body)["error"] == "too_many_requests"


# -- what is not routed -----------------------------------------------------------------

NOT_ROUTED = [
    "/metrics", "/metrics/", "//metrics", "/health/ready", "/health/live",
    "/api/v1/requests/../../metrics", "/api/v1/cases/../../../metrics",
    "/api/v1/requests/%2e%2e/%2e%2e/metrics", "/api/v1/requests/..%2f..%2fmetrics",
    "/api/v1/cases/..%2F..%2F..%2Fmetrics", "/api/v1/cases/..%5c..%5cmetrics",
    # nginx would route these on their decoded form (an API path) and pass them on as
    # sent, which a service or Keycloak may read as /metrics or the master realm
    "/metrics/..%2f/api/v1/cases", "/auth/realms/master%2f..%2f/wangge/protocol/openid-connect/token",
    # Keycloak's admin console and API, and the master realm, stay on the loopback
    "/auth/admin/", "/auth/admin/master/console/", "/auth/admin/realms/wangge/users",
    "/auth/realms/master", "/auth/realms/master/protocol/openid-connect/token",
    "/auth/realms/wangge/../master/protocol/openid-connect/token",
    "/auth/realms/wangge/%2e%2e/master/protocol/openid-connect/token",
    "/auth/realms/wangge/..%2f..%2fadmin/realms/wangge/users",
    "/auth/resources/../admin/master/console/",
    "/auth/", "/auth/welcome",
]


@pytest.mark.parametrize("path", NOT_ROUTED)
def test_metrics_health_and_keycloak_administration_are_not_routed(recorded_gateway, recorder, path):
    before = len(recorder.seen)
    for method in ("GET", "POST"):
        status, headers, body = raw(recorded_gateway, method, path)
        assert status in (400, 404), (method, path, status)
        assert headers["Content-Type"].startswith("application/json")
        assert json.loads(body)["error"] in ("not_found", "bad_request")
    assert recorder.seen[before:] == [], f"{path} reached an upstream"


def test_sign_in_reaches_keycloak_with_the_forwarded_headers_the_gateway_sets(recorded_gateway, recorder):
    before = len(recorder.seen)
    status, _, _ = raw(recorded_gateway, "GET", "/auth/realms/wangge/.well-known/openid-configuration",
                       headers={"Host": "wangge.example.gov.cn", "X-Forwarded-For": "203.0.113.9",
                                "X-Forwarded-Proto": "https"})
    assert status == 200
    [seen] = recorder.seen[before:]
    assert seen["path"] == "/auth/realms/wangge/.well-known/openid-configuration"
    headers = {key.lower(): value for key, value in seen["headers"].items()}
    # the client's own X-Forwarded-For is replaced by the address the gateway saw
    assert headers["x-forwarded-for"] == "127.0.0.1"
    assert headers["x-forwarded-proto"] == "https"
    assert headers["host"] == headers["x-forwarded-host"] == "wangge.example.gov.cn"


def test_without_a_tls_proxy_in_front_keycloak_is_told_plain_http(recorded_gateway, recorder):
    before = len(recorder.seen)
    assert raw(recorded_gateway, "GET", "/auth/resources/abc/login/keycloak.v2/css/login.css")[0] == 200
    [seen] = recorder.seen[before:]
    assert {key.lower(): value for key, value in seen["headers"].items()}["x-forwarded-proto"] == "http"


@pytest.mark.parametrize("path", [
    "/api/v1/requests/YT-20261129-000004", "/api/v1/cases?grid_id=g-1", "/api/v1/notifications?status=failed",
    "/api/v1/contents", "/auth/realms/wangge/protocol/openid-connect/certs",
])
def test_the_apis_and_sign_in_are_routed(recorded_gateway, recorder, path):
    before = len(recorder.seen)
    assert raw(recorded_gateway, "GET", path)[0] == 200
    assert [seen["path"] for seen in recorder.seen[before:]] == [path]
