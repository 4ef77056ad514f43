"""What can be checked here of the production deployment (there is no Docker engine):
the compose file, the Prometheus and Alertmanager configs, the alert rules' own
unit tests, the Grafana dashboards, and the gateway's Dockerfile as Docker reads it."""
import fnmatch
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from dockerfile_parse import DockerfileParser

from tests.deploy.files import read_yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
COMPOSE = ROOT / "docker-compose.yml"
ONE_SHOT = {"rabbitmq-setup", "mongo-init", "mongo-ha-init"}
SCALABLE = {"intake", "routing", "notify", "study", "care"}


def require(tool):
    path = shutil.which(tool)
    assert path, f"{tool} is not installed: `make test` installs it (apt-get install prometheus prometheus-alertmanager docker-compose)"
    return path


@pytest.fixture(scope="module")
def compose():
    return read_yaml(COMPOSE)


def merged(service):
    """A service with what it takes from an anchor (``<<: *…``) filled in, as compose reads it."""
    return {**service.get("<<", {}), **service}


def env_example_names():
    return re.findall(r"^([A-Z0-9_]+)=", (DEPLOY / "env.example").read_text(encoding="utf-8"), re.M)


def required_names():
    """The variables compose will not start without (``${NAME:?…}``)."""
    return sorted(set(re.findall(r"\$\{([A-Z0-9_]+):\?", COMPOSE.read_text(encoding="utf-8"))))


def compose_config(env):
    clean = {key: value for key, value in os.environ.items() if key not in env_example_names()}
    return subprocess.run([require("docker-compose"), "-f", str(COMPOSE), "config", "-q"], env={**clean, **env},
                          capture_output=True, text=True)


def test_compose_file_is_valid_with_every_secret_given():
    result = compose_config({name: "x" for name in env_example_names()})
    assert result.returncode == 0, result.stderr


def test_env_example_lists_every_variable_compose_requires_and_no_other():
    used = set(re.findall(r"\$\{([A-Z0-9_]+)", COMPOSE.read_text(encoding="utf-8")))
    assert set(required_names()) <= set(env_example_names())
    assert set(env_example_names()) <= used


@pytest.mark.parametrize("missing", required_names())
def test_compose_refuses_to_start_without_each_of_its_secrets(missing):
    result = compose_config({name: "x" for name in env_example_names() if name != missing})
    assert result.returncode != 0 and f"set {missing}" in result.stderr, result.stderr


def test_every_long_running_service_has_a_health_check_and_a_restart_policy(compose):
    for name, service in compose["services"].items():
        service = merged(service)
        if name in ONE_SHOT:
            assert service["restart"] == "no", name
            continue
        assert "healthcheck" in service, name
        assert service["restart"] == "unless-stopped", name


def test_every_image_is_pinned_and_every_build_is_in_the_repo(compose):
    for name, service in compose["services"].items():
        service = merged(service)
        image = service.get("image")
        assert image and not image.endswith(":latest") and ":" in image, name
        build = service.get("build")
        if build:
            context = ROOT / (build if isinstance(build, str) else build["context"])
            dockerfile = "Dockerfile" if isinstance(build, str) else build.get("dockerfile", "Dockerfile")
            assert (context / dockerfile).exists(), name


def test_scaled_services_publish_no_host_port(compose):
    for name in SCALABLE:
        assert "ports" not in compose["services"][name], f"{name} would clash with itself under --scale"


def test_only_the_gateway_and_the_brokers_amqp_port_are_public(compose):
    """Grafana, Prometheus, Alertmanager and Keycloak's admin console: the host's loopback."""
    public = {}
    for name, service in compose["services"].items():
        for port in service.get("ports", []):
            if not port.startswith("127.0.0.1:"):
                public.setdefault(name, []).append(port)
    assert public == {"gateway": ["8080:8080"], "rabbitmq": ["${AMQP_PLAIN_BIND:-0.0.0.0}:5672:5672"]}


def test_the_amqp_tls_override_is_valid_and_mounts_what_exists():
    override = DEPLOY / "compose.amqp-tls.yml"
    env = {**os.environ, **{name: "x" for name in env_example_names()}}
    result = subprocess.run([require("docker-compose"), "-f", str(COMPOSE), "-f", str(override), "config", "-q"],
                            env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    for volume in read_yaml(override)["services"]["rabbitmq"]["volumes"]:
        assert (ROOT / volume.split(":")[0]).exists(), volume
    # the certificates' directory exists for the mount, and keeps its contents out of git
    assert (DEPLOY / "tls" / ".gitignore").read_text().splitlines()[1:] == ["*", "!.gitignore"]


def test_mounted_files_exist(compose):
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), f"{name}: {source}"


def test_prometheus_config_is_valid():
    result = subprocess.run([require("promtool"), "check", "config", str(DEPLOY / "prometheus" / "prometheus.yml")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_alert_rules_pass_their_unit_tests():
    result = subprocess.run([require("promtool"), "test", "rules", "wangge_test.yml"], cwd=DEPLOY / "prometheus" / "tests", capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_has_a_unit_test_and_a_runbook_entry():
    rules = [rule["alert"] for group in yaml.safe_load((DEPLOY / "prometheus" / "rules" / "wangge.yml").read_text())["groups"] for rule in group["rules"]]
    tested = (DEPLOY / "prometheus" / "tests" / "wangge_test.yml").read_text()
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for alert in rules:
        assert f"alertname: {alert}" in tested, f"{alert} has no promtool test"
        assert f"`{alert}`" in readme, f"{alert} has no runbook entry in README.md"


def test_alertmanager_config_is_valid():
    result = subprocess.run([require("amtool"), "check-config", str(DEPLOY / "alertmanager" / "alertmanager.yml")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def dashboards():
    return sorted((DEPLOY / "grafana" / "dashboards").glob("*.json"))


@pytest.mark.parametrize("path", dashboards(), ids=lambda p: p.stem)
def test_dashboards_query_the_provisioned_datasource(path):
    datasource = yaml.safe_load((DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml").read_text())["datasources"][0]["uid"]
    dashboard = json.loads(path.read_text(encoding="utf-8"))
    assert dashboard["panels"]
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == datasource
        assert all(target["expr"].strip() for target in panel["targets"])


# -- the gateway's image (deploy/gateway/Dockerfile; no Docker engine here to build it) --

GATEWAY_DOCKERFILE = DEPLOY / "gateway" / "Dockerfile"


def dockerignored(path):
    """Whether the build context leaves ``path`` out, by .dockerignore's patterns (each
    against the path and every folder above it, ``**/`` at any depth)."""
    patterns = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    parts = Path(path).parts
    candidates = ["/".join(parts[:end]) for end in range(1, len(parts) + 1)]
    return any(fnmatch.fnmatchcase(candidate, pattern) or
               (pattern.startswith("**/") and fnmatch.fnmatchcase(candidate.rsplit("/", 1)[-1], pattern[3:]))
               for pattern in patterns for candidate in candidates)


def test_dockerignored_reads_the_patterns_as_docker_does():
    assert dockerignored("var/classifier/model.joblib") and dockerignored("services/x/__pycache__/a.pyc")
    assert dockerignored("web/node_modules/vite/package.json") and not dockerignored("web/src/main.ts")


@pytest.fixture(scope="module")
def gateway_stages():
    """[(base image, stage name, [(instruction, value)])] of the gateway's Dockerfile."""
    stages = []
    for item in DockerfileParser(str(GATEWAY_DOCKERFILE)).structure:
        if item["instruction"] == "FROM":
            image, _, name = item["value"].partition(" AS ")
            stages.append((image, name, []))
        elif item["instruction"] != "COMMENT":
            stages[-1][2].append((item["instruction"], item["value"]))
    return stages


def test_the_gateway_is_built_from_its_dockerfile_by_compose(compose):
    build = compose["services"]["gateway"]["build"]
    assert (ROOT / build["context"] / build["dockerfile"]).resolve() == GATEWAY_DOCKERFILE
    # no mounted config: the image is what runs, here and under Kubernetes
    assert "volumes" not in compose["services"]["gateway"]


def test_the_gateway_image_builds_the_app_from_the_lockfile_then_serves_it_with_nginx(gateway_stages):
    (node, name, build), (nginx, _, serve) = gateway_stages
    assert re.fullmatch(r"node:20\.\d+\.\d+-[a-z-]+", node) and re.fullmatch(r"nginx:\d+\.\d+\.\d+-alpine", nginx)
    steps = [f"{instruction} {value}" for instruction, value in build]
    # the packages the lockfile names, installed before the sources arrive; then the build
    assert steps.index("COPY web/package.json web/package-lock.json ./") < steps.index(
        "RUN npm ci --no-audit --no-fund --loglevel=error") < steps.index("COPY web/ ./") < steps.index("RUN npm run build")
    copies = dict(value.rsplit(" ", 1)[::-1] for instruction, value in serve if instruction == "COPY")
    conf = (DEPLOY / "gateway" / "nginx.conf").read_text()
    # the app lands where nginx.conf serves from
    [root] = re.findall(r"^    root (\S+);", conf, re.M)
    assert copies[root] == f"--from={name} /web/dist"
    assert copies["/etc/nginx/nginx.conf"] == "deploy/gateway/nginx.conf"
    # start.sh runs before nginx (the image's entrypoint runs executable scripts only),
    # and nginx runs the config it writes, beside the app's settings nginx.conf serves
    [start] = [target for target, source in copies.items() if source == "deploy/gateway/start.sh"]
    assert start.startswith("/docker-entrypoint.d/") and start.endswith(".sh")
    mode = subprocess.run(["git", "ls-files", "-s", "deploy/gateway/start.sh"], cwd=ROOT, capture_output=True, text=True).stdout
    assert mode.startswith("100755"), "start.sh must be executable in git"
    [cmd] = [json.loads(value) for instruction, value in serve if instruction == "CMD"]
    run_dir = re.search(r'WANGGE_RUN_DIR:-([^}]+)}', (DEPLOY / "gateway" / "start.sh").read_text()).group(1)
    assert cmd == ["nginx", "-c", f"{run_dir}/nginx.conf", "-g", "daemon off;"]
    assert re.search(r"location = /app-config.json \{\s*root " + re.escape(run_dir) + ";", conf)


def test_what_the_gateway_image_copies_reaches_the_build_and_nothing_local_does(gateway_stages):
    for _, _, steps in gateway_stages:
        for instruction, value in steps:
            if instruction == "COPY" and not value.startswith("--from="):
                for source in value.split()[:-1]:
                    assert (ROOT / source).exists() and not dockerignored(source.rstrip("/")), source
    # the host's packages and build, local state and secrets stay out of every image's context
    for local in ("web/node_modules", "devstack/identity/node_modules", "web/dist", "var", ".env", "deploy/tls/rabbitmq.key", ".venv"):
        assert dockerignored(local), local


# -- the replica set of three (docker compose --profile ha) -------------------------------

HA_MEMBERS = ["mongo-2", "mongo-3"]


def test_compose_file_is_valid_with_the_ha_profile():
    env = {**os.environ, **{name: "x" for name in env_example_names()}}
    result = subprocess.run([require("docker-compose"), "-f", str(COMPOSE), "--profile", "ha", "config", "-q"],
                            env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_the_ha_profile_adds_two_members_started_as_the_first_and_joins_them(compose):
    services = {name: merged(service) for name, service in compose["services"].items()}
    assert sorted(name for name, service in services.items() if service.get("profiles") == ["ha"]) == sorted([*HA_MEMBERS, "mongo-ha-init"])
    first = services["mongo"]
    for name in HA_MEMBERS:
        member = services[name]
        assert (member["image"], member["entrypoint"], member["hostname"]) == (first["image"], first["entrypoint"], name)
        assert member["environment"] == {"MONGO_REPLICA_KEY": first["environment"]["MONGO_REPLICA_KEY"]}
        # no administrator of its own: a member with data of its own would not take the primary's
        assert not any(key.startswith("MONGO_INITDB") for key in member["environment"])
        assert f"{name}-data:/data/db" in member["volumes"] and "ports" not in member
    init = services["mongo-ha-init"]
    assert init["environment"]["MONGO_NEW_MEMBERS"].split(",") == [f"{name}:27017" for name in HA_MEMBERS]
    assert init["depends_on"] == {"mongo-init": {"condition": "service_completed_successfully"},
                                  **{name: {"condition": "service_healthy"} for name in HA_MEMBERS}}
    # it asks whichever member is primary, by the replica set's name
    assert "replicaSet=rs0" in init["command"][1] and init["command"][-1] == "/deploy/add-members.js"


def test_every_service_writes_to_and_reads_from_a_majority(compose):
    for name in SCALABLE:
        uri = compose["services"][name]["environment"]["MONGO_URI"]
        query = dict(item.split("=", 1) for item in uri.split("?", 1)[1].split("&"))
        assert query["replicaSet"] == "rs0" and query["w"] == "majority" and query["readConcernLevel"] == "majority", name


def test_every_service_finds_the_replica_set_through_any_of_its_members(compose):
    # a service (re)started while mongo is down reaches the set through another member
    members = ["mongo", *HA_MEMBERS]
    for name in SCALABLE:
        uri = compose["services"][name]["environment"]["MONGO_URI"]
        assert uri.split("@", 1)[1].split("/", 1)[0].split(",") == [f"{member}:27017" for member in members], name


# add-members.js under node, with mongosh's globals played by the harness: the members
# present, and how many status polls each new one takes to become a secondary
MONGOSH = r"""
const vm = require("vm"), fs = require("fs");
const [path, scenario] = [process.argv[1], JSON.parse(process.argv[2])];
const members = scenario.members.map((host) => ({ host })), calls = [], polls = {};
const rs = {
  conf: () => ({ _id: "rs0", members: members.map((m) => ({ ...m })) }),
  add: (member) => { calls.push(["add", member.host]); members.push({ host: member.host }); polls[member.host] = 0; },
  status: () => ({ members: members.map((m) => {
    const needed = scenario.sync[m.host] ?? 0, seen = polls[m.host] === undefined ? Infinity : polls[m.host]++;
    return { name: m.host, stateStr: needed >= 0 && seen >= needed ? "SECONDARY" : "STARTUP2" };
  }) }),
};
const context = { rs, process: { env: scenario.env }, sleep: () => {}, print: (text) => calls.push(["print", text]),
  db: { getSiblingDB: (name) => ({ auth: (user, password) => calls.push(["auth", name, user, password]) }) } };
let error = null;
try { vm.runInNewContext(fs.readFileSync(path, "utf8"), context); } catch (e) { error = String(e.message); }
console.log(JSON.stringify({ calls, error }));
"""


def add_members(members, sync, env):
    node = shutil.which("node")
    assert node, "Node.js runs the MongoDB scripts' checks"
    scenario = json.dumps({"members": members, "sync": sync, "env": env})
    result = subprocess.run([node, "-e", MONGOSH, str(DEPLOY / "mongo" / "add-members.js"), scenario],
                            capture_output=True, text=True, check=True)
    return json.loads(result.stdout)


HA_ENV = {"MONGO_ADMIN_PASSWORD": "from-the-environment", "MONGO_NEW_MEMBERS": "mongo-2:27017,mongo-3:27017"}


def test_add_members_adds_each_missing_member_once_it_is_signed_in():
    run = add_members(["mongo:27017", "mongo-3:27017"], {"mongo-2:27017": 3}, HA_ENV)
    assert run["error"] is None
    assert run["calls"][0] == ["auth", "admin", "admin", "from-the-environment"]
    assert [call for call in run["calls"] if call[0] == "add"] == [["add", "mongo-2:27017"]]
    assert run["calls"][-1] == ["print", "replica set rs0: mongo:27017, mongo-3:27017, mongo-2:27017"]


def test_add_members_run_again_changes_nothing():
    run = add_members(["mongo:27017", "mongo-2:27017", "mongo-3:27017"], {}, HA_ENV)
    assert run["error"] is None and not [call for call in run["calls"] if call[0] == "add"]


def test_add_members_fails_when_a_member_never_becomes_a_secondary():
    run = add_members(["mongo:27017"], {"mongo-2:27017": -1}, HA_ENV)
    assert "mongo-2:27017 is not a secondary" in run["error"]
    # one member at a time: the next is not added while the first is not in
    assert [call for call in run["calls"] if call[0] == "add"] == [["add", "mongo-2:27017"]]


@pytest.mark.parametrize("missing", sorted(HA_ENV))
def test_add_members_refuses_without_its_settings(missing):
    run = add_members(["mongo:27017"], {}, {key: value for key, value in HA_ENV.items() if key != missing})
    assert missing in run["error"] and run["calls"] == []
