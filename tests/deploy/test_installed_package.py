"""The production image runs ``pip install .`` and imports from site-packages, not
from this tree: build the wheel, install it into a clean virtualenv, and run
every service from there."""
import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
import requests

from devstack.processes import ManagedProcess, http_ok, service_env, wait_until
from services.notify.templates import Templates
from tests.support.ports import free_port
from wangge.config import SERVICE_NAMES

ROOT = Path(__file__).resolve().parents[2]

# Run inside the installed package: where each module came from, and what it can load.
INSPECT = """
import json
import services.notify.templates as templates
import services.routing.classify as classify
import wangge.config as config
loaded = templates.Templates("Asia/Shanghai")
kinds = loaded.kinds()
for kind in kinds:
    loaded.environment.get_template(kind + templates.SUFFIX)  # parses it
print(json.dumps({
    "modules": [templates.__file__, classify.__file__, config.__file__],
    "kinds": kinds,
    "rule_categories": sorted(classify.load_rules(classify.DEFAULT_RULES_PATH).categories),
    "configs": {name: config.service_config_path(name).is_file() for name in config.SERVICE_NAMES},
}))
"""


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """A virtualenv with the wheel installed; the dependencies come from this
    environment's site-packages (a .pth line), so nothing is downloaded."""
    work = tmp_path_factory.mktemp("installed")
    # built from a copy: setuptools leaves build/ behind, and files a stale one holds would be packaged
    source = work / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(".git", ".venv", "var", "build", "web", "*.egg-info", "__pycache__"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet",
                    "--wheel-dir", str(work / "dist"), str(source)], check=True, cwd=work)
    [wheel] = (work / "dist").glob("wangge-*.whl")
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    site_packages = Path(subprocess.check_output(
        [venv / "bin" / "python", "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], text=True).strip())
    # A plain path line: the source tree's editable-install hook in there is not run.
    (site_packages / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([venv / "bin" / "python", "-m", "pip", "install", "--no-deps", "--no-index", "--quiet", str(wheel)],
                   check=True, cwd=work)
    return venv, site_packages, work


def clean_env():
    return {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}


def test_the_installed_package_has_every_template_rule_file_and_config(installed):
    venv, site_packages, work = installed
    output = subprocess.run([venv / "bin" / "python", "-c", INSPECT], check=True, capture_output=True, text=True,
                            cwd=work, env=clean_env()).stdout
    found = json.loads(output)
    assert all(path.startswith(str(site_packages)) for path in found["modules"]), found["modules"]
    assert found["kinds"] == Templates("Asia/Shanghai").kinds() and found["kinds"]
    assert found["rule_categories"]
    assert found["configs"] == {name: True for name in SERVICE_NAMES}


def test_every_service_starts_from_the_installed_package(installed, amqp_uri, mongo_uri):
    venv, site_packages, work = installed
    processes = []
    try:
        for name in SERVICE_NAMES:
            port = free_port()
            env = {**clean_env(), **service_env(name, amqp_uri=amqp_uri, mongo_uri=mongo_uri, port=port,
                                                extra={"ROUTING_AREA_INDEX": "false"})}
            process = ManagedProcess(name, [str(venv / "bin" / "wangge-service"), name], work / f"{name}.log", env=env).start()
            processes.append((process, f"http://127.0.0.1:{port}/health/ready"))
        for process, url in processes:
            wait_until(lambda: http_ok(url), 90, f"{process.name} from the installed package to be ready", process=process)
    finally:
        for process, _ in processes:
            process.stop()


def test_an_operator_overrides_settings_by_environment_or_by_a_mounted_file(installed, amqp_uri, mongo_uri):
    venv, site_packages, work = installed
    mounted = work / "intake.yml"
    mounted.write_text((site_packages / "services" / "intake" / "config.yml").read_text()
                       .replace("${TRACKING_PREFIX:YT}", "${TRACKING_PREFIX:MT}"))
    ways = {"EV": ([], {"TRACKING_PREFIX": "EV"}), "MT": (["--config", str(mounted)], {})}
    for prefix, (arguments, overrides) in ways.items():
        port = free_port()
        env = {**clean_env(), **service_env("intake", amqp_uri=amqp_uri, mongo_uri=mongo_uri, port=port), **overrides}
        process = ManagedProcess("intake", [str(venv / "bin" / "wangge-service"), "intake", *arguments],
                                 work / f"intake-{prefix}.log", env=env).start()
        try:
            base = f"http://127.0.0.1:{port}"
            wait_until(lambda: http_ok(base + "/health/ready"), 60, "intake to be ready", process=process)
            filed = requests.post(base + "/api/v1/requests", json={"channel": "web", "text": "路灯坏了"}, timeout=10).json()
            assert filed["tracking_no"].startswith(prefix + "-")
        finally:
            process.stop()


def test_every_file_of_the_services_and_the_shared_package_is_installed(installed):
    """Data files (templates, rule files, the classifier's corpus) included: what the
    source tree holds and the image lacks would fail only in production."""
    _, site_packages, work = installed
    source = work / "source"
    shipped = [path.relative_to(source) for package in ("services", "wangge") for path in (source / package).rglob("*")
               if path.is_file() and "__pycache__" not in path.parts]
    missing = [str(path) for path in shipped if not (site_packages / path).is_file()]
    assert shipped and missing == []
