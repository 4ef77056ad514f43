"""The gateway's own answers, from a real nginx running deploy/gateway/nginx.conf as the
gateway's image runs it: deploy/gateway/start.sh writes the config nginx runs and the web
app's settings first (only the listening port, the upstream addresses and the folders
changed for this machine).

Two gateways: one whose services are all away (a local port nobody listens on), and
one whose every upstream is a recorder, to see exactly what reaches the services and
Keycloak, and what does not; the second serves the web app, built as the image builds it."""
import http.client
import json
import os
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

from devstack.web import WEB_DIR, app_settings, node_problem
from tests.support.polling import eventually
from tests.support.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
GATEWAY = ROOT / "deploy" / "gateway"
START = GATEWAY / "start.sh"
# where the image puts the built app, and where start.sh writes (nginx.conf names both)
APP_ROOT = "/usr/share/wangge/web"
RUN_DIR = "/var/run/wangge"
PUBLIC_URL = "https://wangge.example.gov.cn"
pytestmark = pytest.mark.skipif(shutil.which("nginx") is None, reason="nginx is installed by `make tools`")


def start_script(run_dir, template, **env):
    """deploy/gateway/start.sh as the image's entrypoint runs it, with this environment."""
    return subprocess.run(["sh", str(START)], capture_output=True, text=True,
                          env={"PATH": os.environ["PATH"], "WANGGE_RUN_DIR": str(run_dir),
                               "WANGGE_NGINX_TEMPLATE": str(template), **env})


@contextmanager
def running_gateway(work, upstream, dist=None, env=None):
    port = free_port()
    config = (GATEWAY / "nginx.conf").read_text()
    config = config.replace("listen 8080;", f"listen 127.0.0.1:{port};")
    # no Docker DNS here: every upstream is the given local address
    config = re.sub(r"set \$(\w+) +\w+:\d+;", rf"set $\1 {upstream};", config)
    config = config.replace(f"root {APP_ROOT};", f"root {dist or work / 'no-app'};")
    config = config.replace(f"root {RUN_DIR};", f"root {work / 'run'};")
    config = config.replace("access_log /var/log/nginx/access.log", f"access_log {work / 'logs' / 'access.log'}")
    (work / "nginx.conf").write_text(config)
    (work / "logs").mkdir()
    started = start_script(work / "run", work / "nginx.conf", WANGGE_PUBLIC_URL=PUBLIC_URL, **(env or {}))
    assert started.returncode == 0, started.stderr
    process = subprocess.Popen(
        ["nginx", "-p", str(work), "-c", str(work / "run" / "nginx.conf"),
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
def web_dist(tmp_path_factory):
    """web/ built as the image's first stage builds it (`npm run build`: vue-tsc, then vite), into a folder
    of the test's own (web/dist may be in use by the browser tests)."""
    problem = node_problem()
    assert problem is None, problem
    assert (WEB_DIR / "node_modules").is_dir(), "the web app's packages are installed by `make install` (npm ci in web/)"
    dist = tmp_path_factory.mktemp("web-dist")
    subprocess.run(["npx", "vite", "build", "--outDir", str(dist), "--emptyOutDir", "--logLevel", "error"],
                   cwd=WEB_DIR, check=True)
    return dist


MAP = {"WANGGE_MAP_TILES": "https://tiles.example.gov.cn/{z}/{x}/{y}.png",
       "WANGGE_MAP_ATTRIBUTION": '© 永泰县 "天地图" \\ 审图号'}


@pytest.fixture(scope="module")
def recorded_gateway(tmp_path_factory, recorder, web_dist):
    with running_gateway(tmp_path_factory.mktemp("recorded-gateway"), f"127.0.0.1:{recorder.server_address[1]}",
                         dist=web_dist, env=MAP) as base:
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


# -- Open311 ------------------------------------------------------------------------------

def test_open311_reads_are_limited_per_address_and_the_gateways_answers_are_open311_errors(gateway):
    """A listing by service_request_id names up to 20 tracking numbers: reads have an allowance too."""
    statuses = []
    for _ in range(ENOUGH_TO_EXHAUST):
        status, headers, body = raw(gateway, "GET", "/open311/v2/requests.json?service_request_id=YT-20261129-000004",
                                    source="127.0.0.6")
        statuses.append(status)
        if status != 503:
            break
        assert json.loads(body) == [{"code": 503, "description": "The service is not available; try again shortly."}]
    assert status == 429 and len(statuses) > 1
    assert headers["Content-Type"].startswith("application/json") and int(headers["Retry-After"]) > 0
    assert json.loads(body)[0]["code"] == 429
    # another address reads as before
    assert raw(gateway, "GET", "/open311/v2/services.json", source="127.0.0.7")[0] == 503


def test_the_access_log_never_shows_an_api_key_however_it_is_written(tmp_path):
    log = tmp_path / "logs" / "access.log"
    queries = ["status=open&api_key=FIRST1&x=1&api_key=LAST1", "api%5Fkey=ENCODED2&x=2", "API_KEY=UPPER3",
               "api_key=ONLY4&status=open"]
    with running_gateway(tmp_path, f"127.0.0.1:{free_port()}") as gateway:
        for query in queries:
            raw(gateway, "GET", f"/open311/v2/requests.json?{query}")
    text = eventually(lambda: log.read_text() if "api_key=***&status=open" in log.read_text() else None)
    assert not re.search("FIRST1|LAST1|ENCODED2|UPPER3|ONLY4", text)
    assert "GET /open311/v2/requests.json?*** HTTP/1.1" in text and "API_KEY=*** HTTP/1.1" in text


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


# -- the web app ------------------------------------------------------------------------

def app_files(dist):
    """What index.html loads from /assets/ (scripts, module preloads, style sheets)."""
    return re.findall(r'(?:src|href)="(/assets/[^"]+)"', (dist / "index.html").read_text(encoding="utf-8"))


@pytest.mark.parametrize("path", [
    "/", "/report", "/report/g-zc-nanmen-02", "/track/YT-20261129-7KQ4-M9XD", "/follow-up/3f9a1c",
    "/staff", "/staff/callback?code=abc&state=xyz", "/staff/cases/c-1", "/staff/centre/map", "/staff/grids/g-1/qr",
])
def test_the_apps_pages_are_its_index_html_never_cached_unasked(recorded_gateway, recorder, web_dist, path):
    before = len(recorder.seen)
    status, headers, body = raw(recorded_gateway, "GET", path)
    assert status == 200
    assert headers["Content-Type"].startswith("text/html")
    assert headers["Cache-Control"] == "no-cache"
    assert body == (web_dist / "index.html").read_bytes()
    assert recorder.seen[before:] == []


def test_the_apps_bundles_are_served_with_their_types_and_cached_for_good(recorded_gateway, web_dist):
    files = app_files(web_dist)
    assert any(name.endswith(".js") for name in files) and any(name.endswith(".css") for name in files)
    for path in files:
        status, headers, body = raw(recorded_gateway, "GET", path)
        assert status == 200, path
        assert body == (web_dist / path.lstrip("/")).read_bytes()
        # a module script under any other type is refused by the browser
        expected = "application/javascript" if path.endswith(".js") else "text/css"
        assert headers["Content-Type"] == expected, path
        assert headers["Cache-Control"] == "public, max-age=31536000, immutable", path


def test_the_bundles_are_compressed_for_browsers_that_accept_it(recorded_gateway, web_dist):
    [script, *_] = [name for name in app_files(web_dist) if name.endswith(".js")]
    status, headers, _ = raw(recorded_gateway, "GET", script, headers={"Accept-Encoding": "gzip"})
    assert status == 200 and headers["Content-Encoding"] == "gzip"


def test_the_apps_other_files_are_served_and_revalidated(recorded_gateway, web_dist):
    status, headers, body = raw(recorded_gateway, "GET", "/favicon.svg")
    assert status == 200 and body == (web_dist / "favicon.svg").read_bytes()
    assert headers["Content-Type"] == "image/svg+xml" and headers["Cache-Control"] == "no-cache"


@pytest.mark.parametrize("path", ["/assets/index-00000000.js", "/assets/", "/assets", "/report.html", "/staffroom"])
def test_what_the_app_does_not_have_is_a_json_404_and_not_cached(recorded_gateway, path):
    status, headers, body = raw(recorded_gateway, "GET", path)
    assert status == 404
    assert headers["Content-Type"].startswith("application/json")
    assert json.loads(body)["error"] == "not_found"
    assert "immutable" not in headers.get("Cache-Control", "")


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
def test_writing_to_a_page_answers_json(recorded_gateway, recorder, method):
    before = len(recorder.seen)
    status, headers, body = raw(recorded_gateway, method, "/staff/cases", headers={"Content-Type": "application/json"}, body=b"{}")
    assert status == 405
    assert headers["Content-Type"].startswith("application/json")
    assert json.loads(body)["error"] == "method_not_allowed"
    assert recorder.seen[before:] == []


def test_the_app_reads_the_settings_start_sh_wrote_from_the_environment(recorded_gateway):
    status, headers, body = raw(recorded_gateway, "GET", "/app-config.json")
    assert status == 200
    assert headers["Content-Type"].startswith("application/json")
    assert headers["Cache-Control"] == "no-store"
    # what `make run`'s server gives the app for the same realm and map
    assert json.loads(body) == app_settings(f"{PUBLIC_URL}/auth/realms/wangge", MAP["WANGGE_MAP_TILES"],
                                            MAP["WANGGE_MAP_ATTRIBUTION"])


def test_without_a_map_the_settings_name_none(tmp_path):
    assert start_script(tmp_path, GATEWAY / "nginx.conf", WANGGE_PUBLIC_URL=PUBLIC_URL).returncode == 0
    assert json.loads((tmp_path / "app-config.json").read_text()) == app_settings(f"{PUBLIC_URL}/auth/realms/wangge")


# -- what start.sh makes of nginx.conf ----------------------------------------------------

def test_under_compose_nginx_runs_nginx_conf_as_it_is(tmp_path):
    assert start_script(tmp_path, GATEWAY / "nginx.conf", WANGGE_PUBLIC_URL=PUBLIC_URL).returncode == 0
    assert (tmp_path / "nginx.conf").read_text() == (GATEWAY / "nginx.conf").read_text()


def test_under_kubernetes_the_upstreams_are_qualified_and_the_clusters_dns_asked(tmp_path):
    # an address here: nginx -t looks the resolver's name up, and there is no cluster DNS
    started = start_script(tmp_path, GATEWAY / "nginx.conf", WANGGE_PUBLIC_URL=PUBLIC_URL,
                           WANGGE_RESOLVER="10.96.0.10", WANGGE_SERVICE_DOMAIN="wangge.svc.cluster.local")
    assert started.returncode == 0, started.stderr
    rendered = (tmp_path / "nginx.conf").read_text()
    original = (GATEWAY / "nginx.conf").read_text()
    upstreams = re.findall(r"set \$(\w+) +(\w+):(\d+);", original)
    assert {name for name, _, _ in upstreams} >= {"intake", "routing", "notify", "study", "care", "keycloak"}
    assert sorted(re.findall(r"set \$(\w+) +([\w.]+):(\d+);", rendered)) == sorted(
        (name, f"{host}.wangge.svc.cluster.local", port) for name, host, port in upstreams)
    assert re.findall(r"^\s*resolver (\S+)", rendered, re.M) == ["10.96.0.10"]
    # nothing else changed, and nginx takes it
    assert len(rendered.splitlines()) == len(original.splitlines())
    (tmp_path / "logs").mkdir()
    checked = subprocess.run(["nginx", "-t", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf"),
                              "-g", f"pid {tmp_path}/nginx.pid; error_log {tmp_path}/error.log;"],
                             capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr


@pytest.mark.parametrize(("env", "complaint"), [
    ({}, "set WANGGE_PUBLIC_URL"),
    ({"WANGGE_PUBLIC_URL": "https://a\nb"}, "control character"),
    ({"WANGGE_PUBLIC_URL": PUBLIC_URL, "WANGGE_MAP_ATTRIBUTION": "x", "WANGGE_MAP_TILES": "https://t/\t{z}"}, "control character"),
    ({"WANGGE_PUBLIC_URL": PUBLIC_URL, "WANGGE_SERVICE_DOMAIN": "x; include /etc/passwd"}, "host name or address"),
    ({"WANGGE_PUBLIC_URL": PUBLIC_URL, "WANGGE_RESOLVER": "10.0.0.1 valid=1s"}, "host name or address"),
])
def test_start_sh_refuses_settings_it_cannot_write_safely(tmp_path, env, complaint):
    started = start_script(tmp_path, GATEWAY / "nginx.conf", **env)
    assert started.returncode != 0 and complaint in started.stderr
    # nginx would not start on a half-written config or serve stale settings
    assert not (tmp_path / "nginx.conf").exists()
