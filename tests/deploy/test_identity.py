"""Keycloak in production, checked offline (Keycloak needs Java, which this machine does
not have): the realm file against the platform's roles, clients and token contract, the
wiring between the realm, compose, the gateway and Alertmanager, and Keycloak's health
check run by bash against a stand-in."""
import json
import re
import shutil
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from devstack.identity import AUDIENCE, DEFAULT_INTEGRATOR_SOURCES, SERVICE_CLIENTS, WEB_CLIENT
from tests.deploy.files import read_yaml
from tests.support.ports import free_port
from wangge.permissions import MACHINE_ROLES, STAFF_ROLES

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
REALM_FILE = DEPLOY / "keycloak" / "wangge-realm.json"
PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9_]+)\}")


@pytest.fixture(scope="module")
def realm():
    return json.loads(REALM_FILE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def compose():
    return read_yaml(ROOT / "docker-compose.yml")


@pytest.fixture(scope="module")
def keycloak(compose):
    return compose["services"]["keycloak"]


@pytest.fixture(scope="module")
def service_env(compose):
    return compose["x-wangge-service"]["environment"]


def clients_by_id(realm):
    return {client["clientId"]: client for client in realm["clients"]}


def scope(realm, name):
    [found] = [candidate for candidate in realm["clientScopes"] if candidate["name"] == name]
    return found


def mappers(realm, client):
    """Every protocol mapper that shapes the client's tokens: its default scopes' and its own."""
    found = [mapper for name in client["defaultClientScopes"] for mapper in scope(realm, name)["protocolMappers"]]
    return found + client.get("protocolMappers", [])


def in_access_token(mapper):
    return mapper["config"].get("access.token.claim") == "true"


def interpolated(value):
    """``${NAME:?message}`` → NAME, for compose values read as written."""
    match = re.fullmatch(r"\$\{([A-Z0-9_]+)(:\?[^}]*)?\}", value)
    return match and match.group(1)


# -- the realm against the platform ---------------------------------------------------

def test_the_realm_has_exactly_the_platforms_roles(realm):
    assert sorted(role["name"] for role in realm["roles"]["realm"]) == sorted([*STAFF_ROLES, *MACHINE_ROLES])


def test_the_web_app_is_a_public_client_with_pkce_and_the_authorization_code_flow_only(realm):
    web = clients_by_id(realm)[WEB_CLIENT]
    assert web["publicClient"] is True and "secret" not in web
    assert web["attributes"]["pkce.code.challenge.method"] == "S256"
    assert web["standardFlowEnabled"] is True
    assert not web["implicitFlowEnabled"] and not web["directAccessGrantsEnabled"] and not web["serviceAccountsEnabled"]
    assert web["redirectUris"] == ["${WANGGE_PUBLIC_URL}/*"]


def machine_clients():
    return {**SERVICE_CLIENTS, **{f"integrator-{source}": "integrator" for source in DEFAULT_INTEGRATOR_SOURCES}}


@pytest.mark.parametrize("client_id, role", sorted(machine_clients().items()))
def test_each_machine_client_has_client_credentials_only_and_its_role(realm, client_id, role):
    client = clients_by_id(realm)[client_id]
    assert client["publicClient"] is False and client["clientAuthenticatorType"] == "client-secret"
    assert client["serviceAccountsEnabled"] is True
    assert not client["standardFlowEnabled"] and not client["implicitFlowEnabled"] and not client["directAccessGrantsEnabled"]
    [account] = [user for user in realm["users"] if user.get("serviceAccountClientId") == client_id]
    assert account["realmRoles"] == [role]


@pytest.mark.parametrize("client_id", sorted(machine_clients()))
def test_each_client_secret_comes_from_the_environment_keycloak_is_given(realm, keycloak, client_id):
    secret = clients_by_id(realm)[client_id]["secret"]
    [variable] = PLACEHOLDER.fullmatch(secret).groups()
    assert interpolated(keycloak["environment"][variable]) == variable
    assert re.search(rf"^{variable}=$", (DEPLOY / "env.example").read_text(encoding="utf-8"), re.M)


def test_every_placeholder_of_the_realm_file_is_given_to_keycloak(realm, keycloak):
    """Keycloak leaves a placeholder it cannot fill as it is: a client secret would be
    the literal text "${…}", which anyone can read here."""
    for variable in PLACEHOLDER.findall(REALM_FILE.read_text(encoding="utf-8")):
        assert interpolated(keycloak["environment"].get(variable, "")) == variable, variable


@pytest.mark.parametrize("client_id", [WEB_CLIENT, *sorted(machine_clients())])
def test_every_access_token_carries_sub_the_api_audience_and_roles_where_services_read_them(realm, service_env, client_id):
    client = clients_by_id(realm)[client_id]
    token_mappers = [mapper for mapper in mappers(realm, client) if in_access_token(mapper)]
    kinds = {mapper["protocolMapper"] for mapper in token_mappers}
    assert "oidc-sub-mapper" in kinds
    audiences = {mapper["config"]["included.custom.audience"] for mapper in token_mappers
                 if mapper["protocolMapper"] == "oidc-audience-mapper"}
    assert audiences == {AUDIENCE} == {service_env["AUTH_AUDIENCE"]}
    role_claims = {mapper["config"]["claim.name"] for mapper in token_mappers
                   if mapper["protocolMapper"] == "oidc-usermodel-realm-role-mapper"}
    # Keycloak's own place, which the services read, and the flat one the local provider uses
    assert role_claims == {service_env["AUTH_ROLES_CLAIM"], "roles"} == {"realm_access.roles", "roles"}


def test_only_the_integrator_speaks_for_a_source_and_for_its_own(realm, service_env):
    for client_id, client in clients_by_id(realm).items():
        sources = [mapper["config"] for mapper in mappers(realm, client)
                   if mapper["config"].get("claim.name") == service_env["AUTH_SOURCE_CLAIM"]]
        if client_id.startswith("integrator-"):
            [config] = sources
            assert config["claim.value"] == client_id.removeprefix("integrator-")
            assert in_access_token({"config": config})
        else:
            assert sources == [], client_id


def test_users_and_the_web_app_get_name_and_roles_in_the_id_token(realm):
    web = clients_by_id(realm)[WEB_CLIENT]
    id_token = {mapper["protocolMapper"]: mapper["config"] for mapper in mappers(realm, web)
                if mapper["config"].get("id.token.claim") == "true"}
    assert "oidc-full-name-mapper" in id_token
    assert id_token["oidc-usermodel-realm-role-mapper"]["claim.name"] == "roles"


def test_every_scope_a_client_names_is_defined(realm):
    defined = {scope_["name"] for scope_ in realm["clientScopes"]}
    for client in realm["clients"]:
        assert set(client["defaultClientScopes"]) <= defined, client["clientId"]
    assert set(realm["defaultDefaultClientScopes"]) <= defined


def test_the_realm_file_has_no_secret_written_in_it(realm):
    for client in realm["clients"]:
        assert "secret" not in client or PLACEHOLDER.fullmatch(client["secret"]), client["clientId"]
    for user in realm.get("users", []):
        assert "credentials" not in user, user["username"]


# -- the wiring in compose ------------------------------------------------------------------

def test_services_verify_tokens_of_the_issuer_keycloak_names_in_them(realm, keycloak, service_env):
    environment = keycloak["environment"]
    public_auth = environment["KC_HOSTNAME"]
    assert public_auth == "${WANGGE_PUBLIC_URL:?set WANGGE_PUBLIC_URL}" + environment["KC_HTTP_RELATIVE_PATH"]
    assert service_env["AUTH_ISSUER"] == f"{public_auth}/realms/{realm['realm']}"


def test_services_fetch_keys_and_tokens_inside_the_network(realm, keycloak, service_env):
    environment = keycloak["environment"]
    assert environment["KC_HOSTNAME_BACKCHANNEL_DYNAMIC"] == "true"
    internal = f"http://keycloak:8080{environment['KC_HTTP_RELATIVE_PATH']}/realms/{realm['realm']}/protocol/openid-connect"
    assert service_env["AUTH_JWKS_URI"] == f"{internal}/certs"
    assert service_env["AUTH_TOKEN_URL"] == f"{internal}/token"
    assert service_env["AUTH_CLIENT_ID"] == "wangge-services" in clients_by_id(realm)
    assert interpolated(service_env["AUTH_CLIENT_SECRET"]) == "WANGGE_SERVICES_CLIENT_SECRET"


def test_alertmanager_gets_its_token_from_the_same_place_with_its_own_client(realm, service_env, compose):
    alertmanager = read_yaml(DEPLOY / "alertmanager" / "alertmanager.yml")
    [webhook] = [config for receiver in alertmanager["receivers"] for config in receiver.get("webhook_configs", [])]
    oauth2 = webhook["http_config"]["oauth2"]
    assert oauth2["client_id"] == "alertmanager" in clients_by_id(realm)
    assert oauth2["token_url"] == service_env["AUTH_TOKEN_URL"]
    assert "client_secret" not in oauth2
    secret = compose["services"]["alertmanager"]["environment"]["ALERTMANAGER_CLIENT_SECRET"]
    assert interpolated(secret) == "ALERTMANAGER_CLIENT_SECRET"


def test_keycloak_imports_the_realm_file_and_keeps_its_admin_console_on_the_loopback(keycloak):
    assert keycloak["command"] == ["start", "--import-realm"]
    assert "./deploy/keycloak/wangge-realm.json:/opt/keycloak/data/import/wangge-realm.json:ro" in keycloak["volumes"]
    assert all(port.startswith("127.0.0.1:") for port in keycloak["ports"])
    assert keycloak["environment"]["KC_HOSTNAME_ADMIN"].endswith("127.0.0.1:8180/auth}")


# -- Keycloak's health check, run by bash -------------------------------------------------------

class Health(ThreadingHTTPServer):
    def __init__(self, status):
        self.status, self.paths = status, []
        super().__init__(("127.0.0.1", 0), HealthHandler)


class HealthHandler(BaseHTTPRequestHandler):
    def do_GET(self):
        self.server.paths.append(self.path)
        body = b'{"status": "UP", "checks": []}' if self.server.status == 200 else b'{"status": "DOWN"}'
        self.send_response(self.server.status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def run_health_check(keycloak, port):
    test = keycloak["healthcheck"]["test"]
    assert test[:3] == ["CMD", "bash", "-c"]
    # as Docker runs it: compose's $$ is a $, and the management port is this stand-in's
    script = test[3].replace("$$", "$").replace("/127.0.0.1/9000", f"/127.0.0.1/{port}")
    return subprocess.run(["bash", "-c", script], capture_output=True, timeout=30).returncode


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
@pytest.mark.parametrize("status, healthy", [(200, True), (503, False)])
def test_the_keycloak_health_check_passes_only_on_ready(keycloak, status, healthy):
    server = Health(status)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        assert (run_health_check(keycloak, server.server_address[1]) == 0) is healthy
        assert server.paths == [keycloak["environment"]["KC_HTTP_RELATIVE_PATH"] + "/health/ready"]
    finally:
        server.shutdown()
        server.server_close()


def test_the_keycloak_health_check_fails_when_nothing_answers(keycloak):
    assert run_health_check(keycloak, free_port()) != 0


# -- MongoDB's init script signs in by itself ---------------------------------------------------

@pytest.mark.skipif(shutil.which("node") is None, reason="node checks the script's syntax")
def test_the_mongo_init_script_parses():
    checked = subprocess.run(["node", "--check", str(DEPLOY / "mongo" / "init-replica-set.js")], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr


def test_mongo_init_takes_the_admin_password_from_its_environment(compose):
    init = compose["services"]["mongo-init"]
    assert "process.env.MONGO_ADMIN_PASSWORD" in (DEPLOY / "mongo" / "init-replica-set.js").read_text()
    assert interpolated(init["environment"]["MONGO_ADMIN_PASSWORD"]) == "MONGO_ADMIN_PASSWORD"
