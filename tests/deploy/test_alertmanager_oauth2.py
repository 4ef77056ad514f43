"""Alertmanager's webhook to notify carries an access token: a real Alertmanager, started
through deploy/alertmanager/entrypoint.sh with deploy/alertmanager/alertmanager.yml (only
the addresses, the secrets directory and the grouping wait changed for this machine),
gets a token by client credentials from a stand-in token endpoint and posts the alert to
a stand-in notify with it."""
import base64
import json
import os
import shutil
import stat
import subprocess
import threading
import time
from http.server import ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

import pytest
import requests

from tests.deploy.files import read_yaml
from tests.support.json_server import JsonHandler
from tests.support.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
ALERTMANAGER_DIR = ROOT / "deploy" / "alertmanager"
ALERTMANAGER = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
TOKEN_PATH = "/auth/realms/wangge/protocol/openid-connect/token"
SECRET = "a-client-secret-from-the-environment"
pytestmark = pytest.mark.skipif(ALERTMANAGER is None, reason="prometheus-alertmanager is installed by `make tools`")


class StandIns(ThreadingHTTPServer):
    """Keycloak's token endpoint and notify's alert receiver, recording what they get."""

    def __init__(self):
        self.token_requests, self.webhooks = [], []
        super().__init__(("127.0.0.1", 0), StandInHandler)


class StandInHandler(JsonHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path == TOKEN_PATH:
            form = {key: values[0] for key, values in parse_qs(body.decode()).items()}
            self.server.token_requests.append({"authorization": self.headers.get("Authorization"), "form": form})
            expected = "Basic " + base64.b64encode(f"alertmanager:{SECRET}".encode()).decode()
            if self.headers.get("Authorization") == expected and form.get("grant_type") == "client_credentials":
                self.answer_json(200, {"access_token": f"token-{len(self.server.token_requests)}", "token_type": "Bearer",
                                 "expires_in": 300})
            else:
                self.answer_json(401, {"error": "invalid_client"})
        elif self.path == "/api/v1/alerts":
            self.server.webhooks.append({"authorization": self.headers.get("Authorization"), "body": json.loads(body)})
            self.answer_json(200, {"accepted": 1})
        else:
            self.answer_json(404, {"error": "not_found"})



@pytest.fixture(scope="module")
def stand_ins():
    server = StandIns()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def alertmanager(tmp_path_factory, stand_ins):
    work = tmp_path_factory.mktemp("alertmanager")
    here = f"http://127.0.0.1:{stand_ins.server_address[1]}"
    config = (ALERTMANAGER_DIR / "alertmanager.yml").read_text()
    for production, local in (("http://notify:8003", here), ("http://keycloak:8080", here),
                              ("/tmp/secrets/", f"{work}/secrets/"), ("group_wait: 30s", "group_wait: 1s")):
        assert production in config, production
        config = config.replace(production, local)
    (work / "alertmanager.yml").write_text(config)
    # the image has Alertmanager on its PATH as `alertmanager`; Debian calls it prometheus-alertmanager
    (work / "bin").mkdir()
    (work / "bin" / "alertmanager").symlink_to(ALERTMANAGER)
    port = free_port()
    env = {"PATH": f"{work}/bin:{os.environ['PATH']}", "ALERTMANAGER_CLIENT_SECRET": SECRET,
           "ALERTMANAGER_SECRETS_DIR": f"{work}/secrets"}
    log = open(work / "alertmanager.log", "wb")
    process = subprocess.Popen(
        ["sh", str(ALERTMANAGER_DIR / "entrypoint.sh"), f"--config.file={work}/alertmanager.yml",
         f"--storage.path={work}/data", f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address="],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if requests.get(base + "/-/ready", timeout=1).status_code == 200:
                break
        except requests.ConnectionError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"Alertmanager did not start:\n{(work / 'alertmanager.log').read_text()}")
        time.sleep(0.1)
    yield {"url": base, "process": process, "work": work}
    process.terminate()
    process.wait(timeout=10)
    log.close()


def wait_for(predicate, timeout=60):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def test_an_alert_reaches_notify_with_a_token_from_client_credentials(alertmanager, stand_ins):
    alert = {"labels": {"alertname": "WanggeDeadLetters", "severity": "warning", "queue": "wangge.inbound.dead"},
             "annotations": {"summary": "1 message(s) in wangge.inbound.dead"}}
    requests.post(alertmanager["url"] + "/api/v2/alerts", json=[alert], timeout=10).raise_for_status()
    assert wait_for(lambda: stand_ins.webhooks), (alertmanager["work"] / "alertmanager.log").read_text()
    [token_request, *_] = stand_ins.token_requests
    assert token_request["form"]["grant_type"] == "client_credentials"
    webhook = stand_ins.webhooks[0]
    assert webhook["authorization"] == "Bearer token-1"
    assert webhook["body"]["alerts"][0]["labels"]["alertname"] == "WanggeDeadLetters"


def test_the_secret_is_a_private_file_and_not_in_alertmanagers_environment(alertmanager):
    secret_file = alertmanager["work"] / "secrets" / "alertmanager-client-secret"
    assert secret_file.read_text() == SECRET
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    # the entrypoint execs Alertmanager: the same process, without the variable
    environ = Path(f"/proc/{alertmanager['process'].pid}/environ").read_bytes().split(b"\0")
    assert Path(f"/proc/{alertmanager['process'].pid}/exe").resolve() == Path(ALERTMANAGER).resolve()
    assert not [item for item in environ if item.startswith(b"ALERTMANAGER_CLIENT_SECRET=")]


def test_the_config_reads_the_file_the_entrypoint_writes_in_the_image():
    oauth2 = read_yaml(ALERTMANAGER_DIR / "alertmanager.yml")["receivers"][0]["webhook_configs"][0]["http_config"]["oauth2"]
    entrypoint = (ALERTMANAGER_DIR / "entrypoint.sh").read_text()
    assert 'secrets_dir="${ALERTMANAGER_SECRETS_DIR:-/tmp/secrets}"' in entrypoint
    assert '"$secrets_dir/alertmanager-client-secret"' in entrypoint
    assert oauth2["client_secret_file"] == "/tmp/secrets/alertmanager-client-secret"


def test_the_entrypoint_refuses_to_start_without_the_secret(tmp_path):
    result = subprocess.run(["sh", str(ALERTMANAGER_DIR / "entrypoint.sh")], capture_output=True, text=True,
                            env={"PATH": os.environ["PATH"], "ALERTMANAGER_SECRETS_DIR": str(tmp_path)})
    assert result.returncode != 0 and "ALERTMANAGER_CLIENT_SECRET" in result.stderr
    assert not (tmp_path / "alertmanager-client-secret").exists()
