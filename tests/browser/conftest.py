"""The web app in a real headless Chromium (Debian's, driven by Playwright) against
the real platform: the store, intake, routing, study, the local identity provider and the
app served as ``make run`` serves it (devstack/web.py), each a process of its own.

The provider here is the test's own: the web app's redirect URI names the port the
app is served on, which is only known once a free one is found.

These tests run in a pytest process of their own, without eventlet (`make test`:
``pytest --confcutdir=tests/browser tests/browser``, so tests/conftest.py, which
monkey-patches, is not loaded): Playwright's sync API runs an asyncio loop in
greenlets, and under eventlet's patching it stalls waiting on its driver. In the
main, patched run this folder is skipped."""
import os
import shutil
import sys
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from devstack.demo_county import build_county
from devstack.identity import (
    client_secrets, endpoints, machine_client_ids, node_problem, platform_clients, start_identity_answering, user_tokens,
)
from devstack.processes import ROOT
from devstack.web import ensure_built, start_web
from tests.support.broker import throwaway_vhost
from tests.support.identity import PASSWORD, USERS
from tests.support.ports import free_port
from tests.support.services import running_platform
from tests.support.store import running_store
from wangge.config import load_config, service_config_path

if "eventlet" in sys.modules and sys.modules["eventlet"].patcher.is_monkey_patched("socket"):
    collect_ignore_glob = ["test_*.py"]

CHROMIUM = os.environ.get("WANGGE_TEST_CHROMIUM", "/usr/bin/chromium")
AXE_SCRIPT = ROOT / "web" / "node_modules" / "axe-core" / "axe.min.js"
ARTIFACTS = ROOT / "var" / "browser"
PHONE = {"width": 375, "height": 812}
DESKTOP = {"width": 1440, "height": 900}  # the command centre
# The README's pictures of the three faces, by the screenshot each is copied from, when
# WANGGE_README_SCREENSHOTS names a folder (`make screenshots`: docs/screenshots).
README_SCREENSHOTS = {
    "resident-report-form": "resident.png",
    "worker-study-study": "grid-worker.png",
    "centre-map-centre-map": "command-centre.png",
}


@dataclass
class WebPlatform:
    base_url: str
    intake: object
    routing: object
    study: object
    issuer: str
    tokens: dict = field(default_factory=dict, repr=False)

    def url(self, path):
        return self.base_url + path

    def api_as(self, user_id):
        """A requests session calling the services as ``user_id`` (tokens from the real provider, kept for the run)."""
        if user_id not in self.tokens:
            self.tokens[user_id] = user_tokens(self.issuer, user_id, PASSWORD, redirect_uri=f"{self.base_url}/staff/callback")["access_token"]
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {self.tokens[user_id]}"
        return session


@pytest.fixture(scope="session")
def mongo_uri(tmp_path_factory):
    with running_store(tmp_path_factory.mktemp("store")) as uri:
        yield uri


@pytest.fixture(scope="package")
def platform_amqp_uri():
    with throwaway_vhost() as uri:
        yield uri


@pytest.fixture(scope="package")
def web_platform(platform_amqp_uri, mongo_uri, tmp_path_factory):
    """The platform once for every browser test (starting it takes most of their time), the demo county loaded.
    Routing holds doubtful requests for a dispatcher at the threshold it ships with."""
    problem = node_problem() or ensure_built(lambda line: print(f"web: {line}"))
    if problem:
        pytest.fail(f"the web app cannot be built here: {problem}", pytrace=False)
    directory = tmp_path_factory.mktemp("web")
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    issuer = f"http://127.0.0.1:{free_port()}"
    secrets = client_secrets(directory / "client-secrets.json", machine_client_ids())
    clients = platform_clients(secrets, web_redirect_uris=[f"{base_url}/*"])
    with ExitStack() as stack:
        provider = start_identity_answering(issuer, directory, USERS, clients, PASSWORD, directory / "identity.log")
        stack.callback(provider.stop)
        trust = {
            "AUTH_ISSUER": issuer, "AUTH_JWKS_URI": endpoints(issuer)["jwks_uri"], "AUTH_TOKEN_URL": f"{issuer}/token",
            "AUTH_CLIENT_ID": "wangge-services", "AUTH_CLIENT_SECRET": secrets["wangge-services"],
        }
        threshold = str(load_config(service_config_path("routing"))["CLASSIFIER"]["CONFIDENCE_THRESHOLD"])
        services = stack.enter_context(running_platform(
            ["intake", "routing"], amqp_uri=platform_amqp_uri, mongo_uri=mongo_uri, log_dir=directory,
            extra_env={**trust, "ROUTING_CONFIDENCE_THRESHOLD": threshold}))
        intake, routing = services["intake"][0], services["routing"][0]
        # study reads the grids from routing, so it starts once routing answers
        study = stack.enter_context(running_platform(
            ["study"], amqp_uri=platform_amqp_uri, mongo_uri=mongo_uri, log_dir=directory,
            extra_env={**trust, "ROUTING_URL": routing.base_url, "STUDY_SCHEDULER_INTERVAL_SECONDS": "1"}))["study"][0]
        upstreams = {"intake": intake.base_url, "routing": routing.base_url, "study": study.base_url}
        web = start_web(port, upstreams, issuer, directory / "web.log")
        stack.callback(web.stop)
        platform = WebPlatform(base_url, intake, routing, study, issuer)
        loaded = platform.api_as("county-admin").put(routing.url("/api/v1/registry"), json=build_county(), timeout=120)
        assert loaded.status_code == 200, loaded.text
        yield platform


@pytest.fixture(scope="package")
def chromium():
    """One browser for these tests."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"no Chromium at {CHROMIUM}: `make tools` installs Debian's chromium", pytrace=False)
    from playwright.sync_api import sync_playwright

    playwright = sync_playwright().start()
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--headless=new"])
    yield browser
    browser.close()
    playwright.stop()


@dataclass
class Visit:
    """A browser context (one person's phone) and what its pages logged."""

    page: object
    console_errors: list
    name: str

    def screenshot(self, label):
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{self.name}-{label}.png"
        self.page.screenshot(path=str(path), full_page=True)
        readme_folder = os.environ.get("WANGGE_README_SCREENSHOTS")
        if readme_folder and path.stem in README_SCREENSHOTS:
            folder = ROOT / readme_folder
            folder.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, folder / README_SCREENSHOTS[path.stem])
        return path

    def serious_accessibility_violations(self):
        """axe-core's violations of impact serious or critical on the page as it is now."""
        if not self.page.evaluate("() => typeof window.axe !== 'undefined'"):
            self.page.add_script_tag(path=str(AXE_SCRIPT))
        result = self.page.evaluate("async () => (await window.axe.run(document, {resultTypes: ['violations']})).violations")
        return [(v["id"], v["impact"], [node["target"] for node in v["nodes"]][:3])
                for v in result if v["impact"] in ("serious", "critical")]


@pytest.fixture
def visit(chromium, web_platform):
    """``visit(name, **context options)``: a fresh browser context, phone-sized unless ``viewport`` says otherwise."""
    contexts = []

    def open_visit(name, **options):
        context = chromium.new_context(**{"viewport": PHONE, "locale": "zh-CN", "base_url": web_platform.base_url, **options})
        contexts.append(context)
        page = context.new_page()
        errors = []

        def on_console(message):
            where = message.location.get("url", "")
            # the provider's login page is not the app's (Chromium asks it for a favicon)
            if message.type == "error" and where.startswith(web_platform.base_url):
                errors.append(f"{message.text} {where}")

        page.on("console", on_console)
        page.on("pageerror", lambda error: errors.append(str(error)))
        return Visit(page, errors, name)

    yield open_visit
    for context in contexts:
        context.close()


def sign_in(page, user_id, password=PASSWORD):
    """On the provider's login form the app sent the browser to."""
    page.get_by_label("用户 User id").fill(user_id)
    page.get_by_label("密码 Password").fill(password)
    page.get_by_role("button", name="登录 Sign in").click()


def poll(check, timeout=20, interval=0.25):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)
