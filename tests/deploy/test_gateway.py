"""The gateway's own answers, from a real nginx running deploy/gateway/nginx.conf
(only the listening port and the upstream addresses changed for this machine)."""
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import requests

from tests.support.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(shutil.which("nginx") is None, reason="nginx is installed by `make tools`")


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    work = tmp_path_factory.mktemp("gateway")
    port, nobody_listening = free_port(), free_port()
    config = (ROOT / "deploy/gateway/nginx.conf").read_text()
    config = config.replace("listen 8080;", f"listen 127.0.0.1:{port};")
    # no Docker DNS here: every upstream is a local port nobody listens on
    config = re.sub(r"set \$(\w+) +\w+:\d+;", rf"set $\1 127.0.0.1:{nobody_listening};", config)
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
    yield base
    process.terminate()
    process.wait(timeout=10)


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
