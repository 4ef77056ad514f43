"""The Kubernetes manifests (deploy/k8s/) as a cluster would get them: each overlay
rendered by kustomize (kubectl's own, `kubectl kustomize`), every built-in object checked
against the API's schemas (kubernetes-validate, offline), and the rendered objects held
to the platform's rules: a Deployment per service with probes on the health paths the
services serve, requests and limits, a PodDisruptionBudget and an autoscaler; network
policies that follow who calls whom in the services' config.yml; no secret values;
pinned images. No cluster here: the operators' resources are checked for what the
services rely on, not run."""
import ipaddress
import json
import re
import shutil
import subprocess
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import kubernetes_validate
import pytest
import yaml

from tests.deploy.files import read_yaml

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
OVERLAYS = ["production", "staging"]
SERVICES = ["intake", "routing", "notify", "study", "care"]
WORKLOADS = [*SERVICES, "gateway"]
# the oldest Kubernetes the manifests are for (topologySpreadConstraints.matchLabelKeys)
KUBERNETES_VERSION = "1.30"
# the operators' resources: no schema for kubernetes-validate, checked below instead
OPERATED = {"RabbitmqCluster", "MongoDBCommunity", "Keycloak", "PrometheusRule"}
# labels the operators give their pods, which the network policies pick them out by
RABBITMQ_PODS = {"app.kubernetes.io/name": "wangge-rabbitmq"}
MONGODB_PODS = {"app": "wangge-mongodb-svc"}
KEYCLOAK_PODS = {"app": "keycloak"}
DNS_PORT = 53


def render(overlay):
    kubectl = shutil.which("kubectl")
    assert kubectl, "kubectl is needed to render the manifests (kubectl kustomize)"
    rendered = subprocess.run([kubectl, "kustomize", str(K8S / "overlays" / overlay)], capture_output=True, text=True)
    assert rendered.returncode == 0, rendered.stderr
    return [doc for doc in yaml.safe_load_all(rendered.stdout) if doc]


@pytest.fixture(scope="module", params=OVERLAYS)
def objects(request):
    return render(request.param)


@pytest.fixture(scope="module")
def production():
    return render("production")


def one(objects, kind, name):
    [found] = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    return found


def of_kind(objects, kind):
    return [o for o in objects if o["kind"] == kind]


def pod_specs(objects):
    """(name, pod spec, pod labels) of every Deployment and Job."""
    return [(o["metadata"]["name"], o["spec"]["template"]["spec"], o["spec"]["template"]["metadata"]["labels"])
            for o in objects if o["kind"] in ("Deployment", "Job")]


def service_config(name):
    return read_yaml(ROOT / "services" / name / "config.yml")


def default_of(placeholder):
    """The default of a ``${VAR:default}`` placeholder."""
    return re.fullmatch(r"\$\{\w+:(.*)\}", placeholder).group(1)


def service_port(name):
    return int(default_of(service_config(name)["WEB_SERVER_ADDRESS"]).rsplit(":", 1)[1])


def http_calls():
    """Who calls whom over HTTP, from each service's config.yml: every URL setting whose
    default is another service's local address."""
    port_of = {service_port(name): name for name in SERVICES}

    def urls(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if isinstance(value, str) and key.endswith("URL") and value.startswith("${"):
                    yield default_of(value)
                else:
                    yield from urls(value)

    calls = {}
    for name in SERVICES:
        targets = {urlsplit(url) for url in urls(service_config(name))}
        calls[name] = {port_of[url.port] for url in targets if url.hostname == "127.0.0.1" and url.port in port_of}
    return calls


def selects(selector, labels):
    return all(labels.get(key) == value for key, value in (selector.get("matchLabels") or {}).items())


def test_the_call_graph_read_from_the_services_config_is_the_one_documented():
    # read, not written down: the policies below are held to this
    assert http_calls() == {"intake": {"routing"}, "routing": {"care", "study"}, "notify": set(),
                            "study": {"routing"}, "care": {"routing", "intake"}}


# -- the schemas --------------------------------------------------------------------------

def test_every_built_in_object_is_valid_against_the_api_schemas(objects):
    for o in objects:
        if o["kind"] not in OPERATED:
            # strict: a misspelt field is an error, not silently dropped by the API server
            kubernetes_validate.validate(o, KUBERNETES_VERSION, strict=True)


def test_a_misspelt_field_is_caught():
    deployment = one(render("production"), "Deployment", "intake")
    deployment["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {"httpGet": {"path": "/health/ready", "port": "http"}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


def test_only_the_operators_resources_are_left_to_them(objects):
    assert {o["kind"] for o in objects if o["kind"] in OPERATED} == OPERATED - ({"PrometheusRule"} if one_namespace(objects) == "wangge-staging" else set())


def one_namespace(objects):
    [namespace] = {o["metadata"].get("namespace") for o in objects if o["kind"] != "Namespace"}
    assert [n["metadata"]["name"] for n in of_kind(objects, "Namespace")] == [namespace]
    return namespace


# -- a Deployment per service -------------------------------------------------------------

@pytest.mark.parametrize("name", WORKLOADS)
def test_every_service_has_a_deployment_and_a_service_on_its_own_port(objects, name):
    deployment = one(objects, "Deployment", name)
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    port = 8080 if name == "gateway" else service_port(name)
    assert container["ports"] == [{"name": "http", "containerPort": port}]
    if name != "gateway":
        assert container["args"] == [name]  # the image's entrypoint is wangge-service
    service = one(objects, "Service", name)
    assert selects({"matchLabels": service["spec"]["selector"]}, deployment["spec"]["template"]["metadata"]["labels"])
    assert service["spec"]["ports"] == [{"name": "http", "port": port, "targetPort": "http"}]


def health_paths(name):
    """The GET paths the service's API reference says it serves for health."""
    document = json.loads((ROOT / "docs" / "api" / f"{name}.openapi.json").read_text(encoding="utf-8"))
    return {path for path, operations in document["paths"].items() if path.startswith("/health") and "get" in operations}


@pytest.mark.parametrize("name", SERVICES)
def test_probes_ask_the_health_paths_the_service_serves(objects, name):
    [container] = one(objects, "Deployment", name)["spec"]["template"]["spec"]["containers"]
    served = health_paths(name)
    # readiness: the broker and the store answer; liveness: the process does (an outage
    # of the broker must not restart every replica)
    assert container["readinessProbe"]["httpGet"] == {"path": "/health/ready", "port": "http"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/health/live", "port": "http"}
    assert container["startupProbe"]["httpGet"]["path"] == "/health/live"
    assert {"/health/ready", "/health/live"} <= served


def test_the_gateways_probes_ask_its_own_health_answer(objects):
    [container] = one(objects, "Deployment", "gateway")["spec"]["template"]["spec"]["containers"]
    conf = (ROOT / "deploy" / "gateway" / "nginx.conf").read_text()
    assert "location = /health { return 200" in conf
    assert container["readinessProbe"]["httpGet"] == container["livenessProbe"]["httpGet"] == {"path": "/health", "port": "http"}


def test_every_container_has_requests_and_limits(objects):
    for name, spec, _ in pod_specs(objects):
        for container in spec["containers"]:
            resources = container["resources"]
            for kind in ("requests", "limits"):
                assert set(resources[kind]) == {"cpu", "memory"}, (name, kind)


def test_every_pod_runs_as_a_user_with_a_read_only_root_and_no_privileges(objects):
    for name, spec, _ in pod_specs(objects):
        assert spec["securityContext"]["runAsNonRoot"] is True and spec["securityContext"]["runAsUser"] > 0, name
        assert spec["automountServiceAccountToken"] is False, name
        for container in spec["containers"]:
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True and context["allowPrivilegeEscalation"] is False, name
            assert context["capabilities"] == {"drop": ["ALL"]}, name


@pytest.mark.parametrize("name", WORKLOADS)
def test_every_service_has_a_disruption_budget_and_an_autoscaler_on_cpu(objects, name):
    labels = one(objects, "Deployment", name)["spec"]["template"]["metadata"]["labels"]
    [budget] = [b for b in of_kind(objects, "PodDisruptionBudget") if selects(b["spec"]["selector"], labels)]
    assert budget["spec"].get("minAvailable") == 1 or budget["spec"].get("maxUnavailable") == 1
    [autoscaler] = [a for a in of_kind(objects, "HorizontalPodAutoscaler") if a["spec"]["scaleTargetRef"]["name"] == name]
    assert autoscaler["spec"]["scaleTargetRef"]["kind"] == "Deployment"
    assert autoscaler["spec"]["minReplicas"] <= autoscaler["spec"]["maxReplicas"]
    [cpu] = [m for m in autoscaler["spec"]["metrics"] if m["type"] == "Resource"]
    assert cpu["resource"]["name"] == "cpu"


def test_production_keeps_two_replicas_of_everything_so_a_drain_loses_none(production):
    for autoscaler in of_kind(production, "HorizontalPodAutoscaler"):
        assert autoscaler["spec"]["minReplicas"] >= 2
    for budget in of_kind(production, "PodDisruptionBudget"):
        assert budget["spec"]["minAvailable"] == 1


def consumers():
    """The services that consume queues: an event queue is evt-<source>-<event>--<service>.<handler>."""
    queues = [queue["name"] for queue in json.loads((ROOT / "deploy" / "rabbitmq" / "definitions.json").read_text())["queues"]]
    found = {match.group(1) for queue in queues if (match := re.match(r"evt-.+--([a-z]+)\.", queue))}
    return found | ({"intake"} if "wangge.inbound.requests" in queues else set())


def test_production_scales_each_consumer_on_its_queue_depth(production):
    assert consumers() == {"intake", "routing", "notify"}
    for autoscaler in of_kind(production, "HorizontalPodAutoscaler"):
        name = autoscaler["spec"]["scaleTargetRef"]["name"]
        external = [m["external"] for m in autoscaler["spec"]["metrics"] if m["type"] == "External"]
        if name in consumers():
            [metric] = external
            assert metric["metric"] == {"name": "wangge_queue_messages_ready", "selector": {"matchLabels": {"consumer": name}}}
        else:
            assert external == [], name


def test_the_queue_depth_metric_is_recorded_and_served_under_the_name_the_autoscalers_ask(production, tmp_path):
    component = K8S / "components" / "queue-depth"
    [rule] = one(production, "PrometheusRule", "wangge-queue-depth")["spec"]["groups"][0]["rules"]
    adapter = yaml.safe_load((component / "prometheus-adapter-values.yaml").read_text())["rules"]["external"]
    assert [(entry["seriesQuery"], entry["name"]["as"]) for entry in adapter] == [(rule["record"], "wangge_queue_messages_ready")]
    # promtool: the rule parses, and maps every real queue to the service that consumes it
    (tmp_path / "rules.yml").write_text(yaml.safe_dump(one(production, "PrometheusRule", "wangge-queue-depth")["spec"]))
    queues = [queue["name"] for queue in json.loads((ROOT / "deploy" / "rabbitmq" / "definitions.json").read_text())["queues"]]
    series = [{"series": f'rabbitmq_queue_messages_ready{{namespace="wangge",queue="{queue}"}}', "values": "3"} for queue in queues]
    expected = {}
    for queue in queues:
        match = re.match(r"evt-.+--([a-z]+)\.[a-z_]+$", queue)
        consumer = match.group(1) if match else "intake" if queue == "wangge.inbound.requests" else None
        if consumer:
            expected[consumer] = expected.get(consumer, 0) + 3
    tests = {"rule_files": ["rules.yml"], "evaluation_interval": "1m", "tests": [{
        "interval": "1m", "input_series": series,
        "promql_expr_test": [{"expr": f'{rule["record"]}{{consumer="{consumer}"}}', "eval_time": "0m",
                              "exp_samples": [{"labels": f'{rule["record"]}{{consumer="{consumer}",namespace="wangge"}}', "value": total}]}
                             for consumer, total in expected.items()]}]}
    (tmp_path / "rules_test.yml").write_text(yaml.safe_dump(tests))
    promtool = shutil.which("promtool")
    assert promtool, "promtool is installed by `make tools`"
    result = subprocess.run([promtool, "test", "rules", "rules_test.yml"], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert set(expected) == consumers()


# -- settings and secrets -----------------------------------------------------------------

def env_names(spec):
    [container] = spec["containers"]
    return {entry["name"] for entry in container.get("env", [])}


def example():
    return [doc for doc in yaml.safe_load_all((K8S / "secrets.example.yaml").read_text()) if doc]


def given_variables(objects, spec):
    """The variables a pod is given: its env, the ConfigMaps it reads whole, and the keys
    secrets.example.yaml lists for the optional ConfigMaps and Secrets it reads whole."""
    [container] = spec["containers"]
    names = env_names(spec)
    listed = {(doc["kind"], doc["metadata"]["name"]): set(doc.get("data") or doc.get("stringData")) for doc in example()}
    for source in container.get("envFrom", []):
        for field, kind in (("configMapRef", "ConfigMap"), ("secretRef", "Secret")):
            if field in source:
                ref = source[field]
                names |= listed[(kind, ref["name"])] if ref.get("optional") else set(one(objects, kind, ref["name"])["data"])
    return names


def test_the_services_are_told_what_compose_tells_them(objects):
    compose = read_yaml(ROOT / "docker-compose.yml")
    shared = set(compose["x-wangge-service"]["environment"])
    for name in SERVICES:
        spec = one(objects, "Deployment", name)["spec"]["template"]["spec"]
        told = shared | set(compose["services"][name]["environment"]) - {"<<"}
        assert told - given_variables(objects, spec) == set(), name
    config = one(objects, "ConfigMap", "wangge-config")["data"]
    for key in ("AUTH_AUDIENCE", "AUTH_ROLES_CLAIM", "AUTH_SOURCE_CLAIM", "AUTH_SUBJECT_CLAIM", "AUTH_CLIENT_ID", "LOG_LEVEL"):
        assert config[key] == compose["x-wangge-service"]["environment"][key], key


def test_the_public_address_is_the_same_everywhere_it_is_named(objects):
    config = one(objects, "ConfigMap", "wangge-config")["data"]
    public = config["WANGGE_PUBLIC_URL"]
    assert public.startswith("https://") and config["AUTH_ISSUER"] == f"{public}/auth/realms/wangge"
    [rule] = one(objects, "Ingress", "wangge")["spec"]["rules"]
    [tls] = one(objects, "Ingress", "wangge")["spec"]["tls"]
    assert rule["host"] == urlsplit(public).hostname and tls["hosts"] == [rule["host"]]
    assert one(objects, "Keycloak", "keycloak")["spec"]["hostname"]["hostname"] == f"{public}/auth"


def test_the_gateway_finds_the_services_and_keycloak_by_the_names_nginx_conf_gives_them(objects):
    conf = (ROOT / "deploy" / "gateway" / "nginx.conf").read_text()
    for _, host, port in re.findall(r"set \$(\w+) +([\w-]+):(\d+);", conf):
        service = one(objects, "Service", host)
        assert int(port) in [p["port"] for p in service["spec"]["ports"]], host
    [container] = one(objects, "Deployment", "gateway")["spec"]["template"]["spec"]["containers"]
    env = {entry["name"]: entry for entry in container["env"]}
    # start.sh qualifies those names with the pod's namespace and asks the cluster's DNS
    assert env["POD_NAMESPACE"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
    assert env["WANGGE_SERVICE_DOMAIN"]["value"] == "$(POD_NAMESPACE).svc.cluster.local"
    assert env["WANGGE_RESOLVER"]["value"] == "kube-dns.kube-system.svc.cluster.local"
    assert env["WANGGE_PUBLIC_URL"]["valueFrom"]["configMapKeyRef"] == {"name": "wangge-config", "key": "WANGGE_PUBLIC_URL"}


@pytest.mark.parametrize("name", SERVICES)
def test_each_service_reaches_the_broker_and_its_replica_set_as_its_own_user(objects, name):
    spec = one(objects, "Deployment", name)["spec"]["template"]["spec"]
    [container] = spec["containers"]
    env = {entry["name"]: entry for entry in container["env"]}
    names = [entry["name"] for entry in container["env"]]
    for variable, key in (("RABBITMQ_PASSWORD", "rabbitmq-password"), ("MONGO_PASSWORD", "mongodb-password")):
        assert env[variable]["valueFrom"]["secretKeyRef"] == {"name": f"wangge-{name}", "key": key}
    amqp = urlsplit(env["AMQP_URI"]["value"])
    assert (amqp.username, amqp.password, amqp.hostname) == (name, "$(RABBITMQ_PASSWORD)", "wangge-rabbitmq")
    mongo = urlsplit(env["MONGO_URI"]["value"])
    assert (mongo.username, mongo.password, mongo.hostname) == (name, "$(MONGO_PASSWORD)", "wangge-mongodb-svc")
    options = parse_qs(mongo.query)
    # acknowledged by a majority, read as a majority has it: nothing a failover rolls back
    assert options["replicaSet"] == ["wangge-mongodb"] and options["w"] == ["majority"]
    assert options["readConcernLevel"] == ["majority"] and options["authSource"] == ["admin"]
    # a $(VAR) is expanded only from variables defined before it
    assert names.index("RABBITMQ_PASSWORD") < names.index("AMQP_URI") and names.index("MONGO_PASSWORD") < names.index("MONGO_URI")
    # the replica set's user is the same one, with the same password, limited to its database
    [user] = [u for u in one(objects, "MongoDBCommunity", "wangge-mongodb")["spec"]["users"] if u["name"] == name]
    assert user["passwordSecretRef"] == {"name": f"wangge-{name}", "key": "mongodb-password"}
    assert user["roles"] == [{"name": "readWrite", "db": default_of(service_config(name)["MONGO_DATABASE"])}]


def test_the_broker_and_store_are_the_operators_with_enough_members(production):
    rabbitmq = one(production, "RabbitmqCluster", "wangge-rabbitmq")
    assert rabbitmq["apiVersion"] == "rabbitmq.com/v1beta1" and rabbitmq["spec"]["replicas"] == 3
    assert "prometheus.return_per_object_metrics = true" in rabbitmq["spec"]["rabbitmq"]["additionalConfig"]
    mongodb = one(production, "MongoDBCommunity", "wangge-mongodb")
    assert mongodb["apiVersion"] == "mongodbcommunity.mongodb.com/v1"
    assert mongodb["spec"]["type"] == "ReplicaSet" and mongodb["spec"]["members"] == 3
    assert {user["name"] for user in mongodb["spec"]["users"]} == set(SERVICES)
    # the same versions compose runs
    compose = read_yaml(ROOT / "docker-compose.yml")["services"]
    assert rabbitmq["spec"]["image"] == compose["rabbitmq"]["image"]
    assert mongodb["spec"]["version"] == compose["mongo"]["image"].split(":")[1]


def test_the_broker_setup_gives_every_user_of_the_topology_a_password(objects):
    [container] = one(objects, "Job", "rabbitmq-setup")["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["wangge-admin"] and container["args"] == ["rabbitmq", "setup"]
    users = [user["name"] for user in json.loads((ROOT / "deploy" / "rabbitmq" / "definitions.json").read_text())["users"]]
    assert {f"RABBITMQ_{user.upper()}_PASSWORD" for user in users} <= env_names({"containers": [container]})


def secret_refs(objects):
    """(Secret, key) of every secretKeyRef and whole-Secret envFrom in the rendered pods."""
    refs = set()
    for _, spec, _ in pod_specs(objects):
        for container in spec["containers"]:
            for entry in container.get("env", []):
                ref = entry.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    refs.add((ref["name"], ref["key"]))
            for source in container.get("envFrom", []):
                if "secretRef" in source:
                    refs.add((source["secretRef"]["name"], None))
    for user in one(objects, "MongoDBCommunity", "wangge-mongodb")["spec"]["users"]:
        refs.add((user["passwordSecretRef"]["name"], user["passwordSecretRef"]["key"]))
    keycloak = one(objects, "Keycloak", "keycloak")["spec"]["db"]
    refs |= {(keycloak[field]["name"], keycloak[field]["key"]) for field in ("usernameSecret", "passwordSecret")}
    return refs


URL_WITH_PASSWORD = re.compile(r"\b[a-z][a-z0-9+.-]*://[^/\s:@'\"]+:([^@\s/'\"]+)@", re.I)
# as in compose (tests/deploy/test_secrets.py): a URL carries credentials only where its
# reader takes nothing but the URL
URIS_WITH_CREDENTIALS = {"AMQP_URI", "MONGO_URI", "RABBITMQ_MANAGEMENT_URL"}


def credential_problems(container):
    """What in a container's env writes a password into a URL: only the URIs above may
    carry one, and only as $(VAR) of a variable taken from a Secret before it."""
    problems, from_secrets = [], set()
    for entry in container.get("env", []):
        if "secretKeyRef" in entry.get("valueFrom", {}):
            from_secrets.add(entry["name"])
        for match in URL_WITH_PASSWORD.finditer(entry.get("value", "")):
            reference = re.fullmatch(r"\$\(([A-Z0-9_]+)\)", match.group(1))
            if entry["name"] not in URIS_WITH_CREDENTIALS or not reference or reference.group(1) not in from_secrets:
                problems.append(f"{entry['name']}: {match.group(0)}")
    return problems


def test_the_credentials_check_sees_a_written_password():
    secret = {"name": "RABBITMQ_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "wangge-intake", "key": "rabbitmq-password"}}}
    assert credential_problems({"env": [{"name": "AMQP_URI", "value": "amqp://intake:hunter2@wangge-rabbitmq:5672/"}]})
    assert credential_problems({"env": [{"name": "AMQP_URI", "value": "amqp://intake:$(RABBITMQ_PASSWORD)@wangge-rabbitmq/"}, secret]})
    assert credential_problems({"env": [secret, {"name": "LOG_URL", "value": "http://a:$(RABBITMQ_PASSWORD)@x/"}]})
    assert credential_problems({"env": [secret, {"name": "AMQP_URI", "value": "amqp://intake:$(RABBITMQ_PASSWORD)@wangge-rabbitmq/"}]}) == []


def test_no_secret_value_is_in_the_manifests(objects):
    assert of_kind(objects, "Secret") == []
    for name, spec, _ in pod_specs(objects):
        for container in spec["containers"]:
            assert credential_problems(container) == [], name
    # and nowhere else: a URL with a password outside the pods' env
    text = yaml.safe_dump_all([o for o in objects if o["kind"] not in ("Deployment", "Job")])
    assert URL_WITH_PASSWORD.findall(text) == []


def test_the_secrets_example_names_every_secret_read_and_holds_no_value(objects):
    secrets = {doc["metadata"]["name"]: doc["stringData"] for doc in example() if doc["kind"] == "Secret"}
    for doc in example():
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        if doc["kind"] == "Secret":
            assert set(doc["stringData"].values()) == {""}, doc["metadata"]["name"]
    made_by_the_broker_operator = {"wangge-rabbitmq-default-user"}
    for name, key in secret_refs(objects):
        if name in made_by_the_broker_operator:
            continue
        assert name in secrets, name
        assert key is None or key in secrets[name], (name, key)


def test_every_image_is_pinned_and_from_the_countys_registry(objects):
    for name, spec, _ in pod_specs(objects):
        for container in spec["containers"]:
            repository, _, tag = container["image"].rpartition(":")
            assert tag and tag != "latest" and "/" not in tag, container["image"]
            assert repository.startswith("registry.example.gov.cn/wangge/"), container["image"]
    for kind, field in (("RabbitmqCluster", "image"), ("Keycloak", "image")):
        for resource in of_kind(objects, kind):
            assert re.search(r":\d+\.\d+\.\d+", resource["spec"][field]), resource["spec"][field]


# -- network policies ---------------------------------------------------------------------

def policies_for(objects, labels, kind):
    """The policies of that kind that name the pods (not the namespace's deny-all)."""
    return [p for p in of_kind(objects, "NetworkPolicy")
            if p["spec"]["podSelector"] and selects(p["spec"]["podSelector"], labels) and kind in p["spec"]["policyTypes"]]


ANYWHERE = "anywhere"


def peers(rules, key):
    """[(peer, ports)] of the rules: peer the labels of a podSelector (a dict), the name
    of a namespace, "dns", ANYWHERE (no peer named), or ("cidr", an ipBlock's CIDR)."""
    found = []
    for rule in rules:
        ports = sorted(port["port"] for port in rule.get("ports", [])) or None
        for peer in rule.get(key, [{ANYWHERE: True}]):
            if ANYWHERE in peer:
                found.append((ANYWHERE, ports))
            elif "ipBlock" in peer:
                found.append((("cidr", peer["ipBlock"]["cidr"]), ports))
            elif "namespaceSelector" in peer and "podSelector" in peer:
                assert peer["podSelector"]["matchLabels"] == {"k8s-app": "kube-dns"}
                found.append(("dns", ports))
            elif "namespaceSelector" in peer:
                found.append((peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"], ports))
            else:
                found.append((peer["podSelector"]["matchLabels"], ports))
    return found


def outside(peer):
    return peer == ANYWHERE or isinstance(peer, tuple)


def test_every_pod_of_the_namespace_is_closed_to_ingress_unless_let_in(objects):
    [deny] = [p for p in of_kind(objects, "NetworkPolicy") if p["spec"]["podSelector"] == {}]
    assert deny["spec"]["policyTypes"] == ["Ingress"] and "ingress" not in deny["spec"]


def test_only_the_gateway_is_reachable_from_outside(objects):
    for name, _, labels in pod_specs(objects):
        for policy in policies_for(objects, labels, "Ingress"):
            for peer, ports in peers(policy["spec"].get("ingress", []), "from"):
                assert name == "gateway" or not outside(peer), (name, policy["metadata"]["name"], peer)
    gateway_labels = one(objects, "Deployment", "gateway")["spec"]["template"]["metadata"]["labels"]
    [policy] = policies_for(objects, gateway_labels, "Ingress")
    assert peers(policy["spec"]["ingress"], "from") == [(ANYWHERE, [8080])]
    for selector in (RABBITMQ_PODS, MONGODB_PODS, KEYCLOAK_PODS):
        for policy in policies_for(objects, selector, "Ingress"):
            assert not any(outside(peer) for peer, _ in peers(policy["spec"]["ingress"], "from")), policy["metadata"]["name"]


def test_every_wangge_pod_reaches_only_what_its_policies_name(objects):
    for name, _, labels in pod_specs(objects):
        assert policies_for(objects, labels, "Egress"), f"{name}'s egress is open"
        assert ("dns", [DNS_PORT, DNS_PORT]) in [p for policy in policies_for(objects, labels, "Egress")
                                                 for p in peers(policy["spec"]["egress"], "to")], name


def egress_of(objects, name):
    labels = one(objects, "Deployment", name)["spec"]["template"]["metadata"]["labels"]
    return [peer for policy in policies_for(objects, labels, "Egress") for peer in peers(policy["spec"]["egress"], "to")
            if peer[0] != "dns"]


@pytest.mark.parametrize("name", SERVICES)
def test_each_service_reaches_the_broker_the_store_keycloak_and_only_what_it_calls(objects, name):
    calls = http_calls()[name]
    expected = [(RABBITMQ_PODS, [5672]), (MONGODB_PODS, [27017]), (KEYCLOAK_PODS, [8080]),
                *[({"app.kubernetes.io/name": callee}, [service_port(callee)]) for callee in sorted(calls)]]
    reached = [peer for peer in egress_of(objects, name) if not outside(peer[0])]
    assert sorted(map(repr, reached)) == sorted(map(repr, expected))
    # notify alone sends outside the cluster (WeCom, SMS, email, webhooks)
    assert any(outside(peer) for peer, _ in egress_of(objects, name)) == (name == "notify")


def test_notify_reaches_outside_but_not_the_clouds_metadata_nor_private_addresses(objects):
    labels = one(objects, "Deployment", "notify")["spec"]["template"]["metadata"]["labels"]
    blocks = [peer["ipBlock"] for policy in policies_for(objects, labels, "Egress") for rule in policy["spec"]["egress"]
              for peer in rule.get("to", []) if "ipBlock" in peer]

    def reached(address, block):
        address = ipaddress.ip_address(address)
        return address in ipaddress.ip_network(block["cidr"]) and not any(
            address in ipaddress.ip_network(cidr) for cidr in block.get("except", []))

    assert any(reached("203.0.113.10", block) for block in blocks)  # a gateway on the internet
    for address in ("169.254.169.254", "10.96.0.1", "10.244.1.7", "172.20.0.5", "192.168.1.10"):
        assert not any(reached(address, block) for block in blocks), address


@pytest.mark.parametrize("name", SERVICES)
def test_each_service_is_reached_by_the_gateway_its_callers_and_prometheus_only(objects, name):
    labels = one(objects, "Deployment", name)["spec"]["template"]["metadata"]["labels"]
    callers = sorted(caller for caller, callees in http_calls().items() if name in callees)
    reached_by = [peer for policy in policies_for(objects, labels, "Ingress") for peer in peers(policy["spec"].get("ingress", []), "from")]
    expected = [({"app.kubernetes.io/name": "gateway"}, [service_port(name)]),
                *[({"app.kubernetes.io/name": caller}, [service_port(name)]) for caller in callers],
                ("monitoring", [service_port(name)])]
    assert sorted(map(repr, reached_by)) == sorted(map(repr, expected))


def test_the_gateway_reaches_the_services_and_keycloak_only(objects):
    expected = [({"app.kubernetes.io/name": name}, [service_port(name)]) for name in SERVICES] + [(KEYCLOAK_PODS, [8080])]
    assert sorted(map(repr, egress_of(objects, "gateway"))) == sorted(map(repr, expected))


def test_the_operators_pods_are_reached_by_wangges_services_on_their_ports(objects):
    service_pods = {"app.kubernetes.io/component": "service"}
    for selector, port in ((RABBITMQ_PODS, 5672), (MONGODB_PODS, 27017), (KEYCLOAK_PODS, 8080)):
        [policy] = policies_for(objects, selector, "Ingress")
        assert (service_pods, [port]) in peers(policy["spec"]["ingress"], "from"), policy["metadata"]["name"]
    # and the services carry the label those policies let in
    for name in SERVICES:
        assert selects({"matchLabels": service_pods}, one(objects, "Deployment", name)["spec"]["template"]["metadata"]["labels"])
