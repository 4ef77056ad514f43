"""The local OpenID Connect provider (``devstack/identity/``: panva's oidc-provider on
Node) that ``make run`` and the tests start, and getting tokens from it the way the
web app and the services will: a user through the authorization-code flow with PKCE
and the login form, a service through client credentials. Production uses
Keycloak; nothing here is used there.

Access tokens are JWTs for the audience ``wangge-api``, signed RS256 with the key in
the provider's JWKS, carrying ``sub`` (the user or client id), ``roles``, and
``name`` for users or ``source`` for integrators.
"""
import base64
import hashlib
import json
import os
import secrets
import shutil
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import parse_qs, urljoin, urlsplit

import requests

from devstack.processes import ROOT, ManagedProcess, wait_until
from wangge.config import load_config

IDENTITY_DIR = ROOT / "devstack" / "identity"
SERVER_SCRIPT = IDENTITY_DIR / "server.js"
LOCAL_DIR = ROOT / "var" / "identity"
SETTINGS_PATH = ROOT / "wangge" / "admin.yml"
AUDIENCE = "wangge-api"
API_SCOPE = "wangge"
WEB_CLIENT = "wangge-web"
SERVICES_CLIENT = "wangge-services"
# Keycloak-style patterns: any callback path on the web app's dev servers (the
# gateway's port and Vite's), so the web app needs no list of its own.
DEFAULT_WEB_REDIRECT_URIS = (
    "http://127.0.0.1:8080/*", "http://localhost:8080/*", "http://127.0.0.1:5173/*", "http://localhost:5173/*",
)
# Where a command-line login "returns" to: nothing listens there, the code is read off the redirect.
COMMAND_LINE_REDIRECT_URI = "http://127.0.0.1:8080/auth/callback"
DEFAULT_INTEGRATOR_SOURCES = ("hotline12345",)
SERVICE_CLIENTS = {SERVICES_CLIENT: "service", "alertmanager": "alertmanager"}


class IdentityUnavailable(RuntimeError):
    """Node.js or the provider's packages are missing."""


class LoginRefused(RuntimeError):
    """The provider gave no token: wrong password, unknown user or client, a refused request."""


def settings():
    """The local provider's issuer, demo password and client-secrets file, from
    wangge/admin.yml (env WANGGE_IDENTITY_ISSUER, WANGGE_DEMO_PASSWORD,
    WANGGE_IDENTITY_SECRETS_FILE), shared by ``make run`` and ``wangge-admin token``."""
    config = load_config(SETTINGS_PATH)
    return {
        "issuer": config["IDENTITY_ISSUER"].rstrip("/"),
        "password": config["IDENTITY_DEMO_PASSWORD"],
        "secrets_file": Path(config["IDENTITY_SECRETS_FILE"] or LOCAL_DIR / "client-secrets.json"),
    }


def service_settings(local):
    """The AUTH_* environment with which the services trust the local provider
    (and study calls routing as the ``wangge-services`` client)."""
    secrets = json.loads(Path(local["secrets_file"]).read_text())
    discovered = endpoints(local["issuer"])
    return {
        "AUTH_ISSUER": local["issuer"], "AUTH_JWKS_URI": discovered["jwks_uri"], "AUTH_TOKEN_URL": discovered["token_endpoint"],
        "AUTH_CLIENT_ID": SERVICES_CLIENT, "AUTH_CLIENT_SECRET": secrets[SERVICES_CLIENT],
    }


def admin_session(local):
    """A ``requests.Session`` acting as the demo county's administrator (loads the demo data)."""
    session = requests.Session()
    token = user_tokens(local["issuer"], "county-admin", local["password"])["access_token"]
    session.headers["Authorization"] = f"Bearer {token}"
    return session


def node_problem():
    """None if the provider can run here, else one line saying why not."""
    if not shutil.which("node"):
        return "Node.js is not installed (the local identity provider needs node 20 and npm)"
    if not (IDENTITY_DIR / "node_modules" / "oidc-provider").is_dir():
        return f"the identity provider's packages are missing: run `make install` (npm ci in {IDENTITY_DIR.relative_to(ROOT)})"
    return None


# -- who may log in ---------------------------------------------------------------

def user(user_id, roles, name=None):
    return {"id": user_id, "roles": list(roles), **({"name": name} if name else {})}


def demo_users(county):
    """Every grid worker and grid head of the registry by their id, a lead for every
    town and community, a login for every department, and the county's own staff."""
    users = [
        user("county-admin", ["county_admin"], "县网格管理员"),
        user("county-center", ["county_center"], "县网格化服务管理中心"),
        user("operator", ["operator"], "运维值班"),
        user("editor", ["study_editor"], "学习内容编辑"),
    ]
    for town in county["towns"]:
        users.append(_lead(town, "town_lead"))
        for community in town["communities"]:
            users.append(_lead(community, "community_lead"))
            for grid in community["grids"]:
                users.append(user(grid["head"]["id"], ["grid_head"], grid["head"]["name"]))
                users += [user(worker["id"], ["grid_worker"], worker["name"]) for worker in grid["workers"]]
    users += [user(f"dept-{department['id']}", ["department"], department["name"]) for department in county["departments"]]
    return users


def _lead(place, role):
    """A town's or community's lead: the registry's head of it if it names one."""
    head = place.get("head") or {"id": f"lead-{place['id']}", "name": f"{place['name']}负责人"}
    return user(head["id"], [role], head.get("name"))


def platform_clients(secrets_by_client, web_redirect_uris=DEFAULT_WEB_REDIRECT_URIS, integrator_sources=DEFAULT_INTEGRATOR_SOURCES):
    """oidc-provider client metadata, plus the claims each client's own tokens carry."""
    clients = [{
        "client_id": WEB_CLIENT,
        "token_endpoint_auth_method": "none",  # a browser app keeps no secret: PKCE instead
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "redirect_uris": list(web_redirect_uris),
        "post_logout_redirect_uris": list(web_redirect_uris),
    }]
    machine_clients = {**{client_id: {"roles": [role]} for client_id, role in SERVICE_CLIENTS.items()},
                       **{f"integrator-{source}": {"roles": ["integrator"], "source": source} for source in integrator_sources}}
    for client_id, claims in machine_clients.items():
        clients.append({
            "client_id": client_id,
            "client_secret": secrets_by_client[client_id],
            "grant_types": ["client_credentials"],
            "response_types": [],
            "redirect_uris": [],
            "access_token_claims": claims,
        })
    return clients


def machine_client_ids(integrator_sources=DEFAULT_INTEGRATOR_SOURCES):
    return [*SERVICE_CLIENTS, *(f"integrator-{source}" for source in integrator_sources)]


def client_secrets(path, client_ids):
    """Each client's secret, made on first use and kept in ``path`` (mode 0600)."""
    path = Path(path)
    known = json.loads(path.read_text()) if path.exists() else {}
    missing = [client_id for client_id in client_ids if client_id not in known]
    if missing:
        known.update({client_id: secrets.token_urlsafe(32) for client_id in missing})
        _write_private(path, known)
    return known


def _write_private(path, document):
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump(document, out, ensure_ascii=False)


# -- the provider process ----------------------------------------------------------

def start_identity(issuer, directory, users, clients, password, log_path, *, key_file=None, detached=False):
    """Write the users and clients for the provider into ``directory`` and start it;
    the signing key is made there (or at ``key_file``) on first start and kept."""
    problem = node_problem()
    if problem:
        raise IdentityUnavailable(problem)
    directory = Path(directory)
    users_file, clients_file = directory / "users.json", directory / "clients.json"
    _write_private(users_file, {"users": users})
    _write_private(clients_file, {"clients": clients})  # holds the client secrets
    env = {
        "IDENTITY_ISSUER": issuer,
        "IDENTITY_USERS_FILE": str(users_file),
        "IDENTITY_CLIENTS_FILE": str(clients_file),
        "IDENTITY_KEY_FILE": str(key_file or directory / "signing-key.json"),
        "IDENTITY_DEMO_PASSWORD": password,
        "IDENTITY_AUDIENCE": AUDIENCE,
        "NODE_ENV": "development",
    }
    return ManagedProcess("identity", ["node", str(SERVER_SCRIPT)], log_path, env=env, detached=detached).start()


def discovery_url(issuer):
    return f"{issuer}/.well-known/openid-configuration"


def discovery_answers(issuer):
    try:
        return requests.get(discovery_url(issuer), timeout=2).status_code == 200
    except requests.RequestException:
        return False


def wait_for_identity(issuer, process, timeout=30):
    wait_until(lambda: discovery_answers(issuer), timeout, "the identity provider's discovery document",
               process=process, interval=0.05)


def start_identity_answering(issuer, *args, attempts=2, timeout=45, **kwargs):
    """``start_identity``, then its discovery document. A provider that has not answered
    within ``timeout`` (it starts in about a second; once, on a busy machine, one stayed
    alive and silent) is stopped and started again, ``attempts`` times in all."""
    for attempt in range(1, attempts + 1):
        process = start_identity(issuer, *args, **kwargs)
        try:
            wait_for_identity(issuer, process, timeout)
            return process
        except RuntimeError:
            process.stop()
            if attempt == attempts:
                raise


def start_local_provider(log_path, detached=False):
    """``make run``'s provider: the demo county's people, secrets and key under
    var/identity. Returns (process or None if one already answers, settings)."""
    local = settings()
    if discovery_answers(local["issuer"]):
        return None, local
    from devstack.demo_county import build_county

    web_redirect_uris = _listed(os.environ.get("WANGGE_WEB_REDIRECT_URIS")) or DEFAULT_WEB_REDIRECT_URIS
    sources = _listed(os.environ.get("WANGGE_INTEGRATOR_SOURCES")) or DEFAULT_INTEGRATOR_SOURCES
    secrets_by_client = client_secrets(local["secrets_file"], machine_client_ids(sources))
    process = start_identity_answering(
        local["issuer"], LOCAL_DIR, demo_users(build_county()), platform_clients(secrets_by_client, web_redirect_uris, sources),
        local["password"], log_path, detached=detached,
    )
    return process, local


def _listed(value):
    return tuple(item.strip() for item in (value or "").split(",") if item.strip())


# -- getting tokens ------------------------------------------------------------------

def endpoints(issuer):
    response = requests.get(discovery_url(issuer), timeout=10)
    response.raise_for_status()
    return response.json()


def user_tokens(issuer, user_id, password, *, client_id=WEB_CLIENT, redirect_uri=COMMAND_LINE_REDIRECT_URI,
                scope=f"openid profile {API_SCOPE}"):
    """Log in as a browser would (authorize → the login form → credentials → code,
    with PKCE) and exchange the code: the token response (access_token, id_token, …)."""
    discovered = endpoints(issuer)
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    state = secrets.token_urlsafe(16)
    with requests.Session() as browser:
        response = browser.get(discovered["authorization_endpoint"], allow_redirects=False, timeout=10, params={
            "client_id": client_id, "response_type": "code", "redirect_uri": redirect_uri, "scope": scope,
            "state": state, "code_challenge": challenge, "code_challenge_method": "S256",
        })
        page, callback = _follow(browser, response, redirect_uri)
        if page is not None:
            form = _form_of(page)
            response = browser.post(urljoin(page.url, form.action), data={"login": user_id, "password": password},
                                    allow_redirects=False, timeout=10)
            page, callback = _follow(browser, response, redirect_uri)
        if page is not None:
            raise LoginRefused(f"{user_id} was not let in: HTTP {page.status_code} {_form_of(page).alert or ''}".strip())
    if "error" in callback:
        raise LoginRefused(f"{callback['error']}: {callback.get('error_description', '')}")
    # the provider names itself in the response (RFC 9207): a code from elsewhere is refused
    if callback.get("state") != state or callback.get("iss", issuer) != issuer or "code" not in callback:
        raise LoginRefused(f"the authorization response is not ours: {callback}")
    return _token_response(requests.post(discovered["token_endpoint"], timeout=10, data={
        "grant_type": "authorization_code", "code": callback["code"], "redirect_uri": redirect_uri,
        "client_id": client_id, "code_verifier": verifier,
    }))


def client_tokens(issuer, client_id, client_secret):
    """A service's or an integrator's token: client credentials at the token endpoint."""
    discovered = endpoints(issuer)
    return _token_response(requests.post(discovered["token_endpoint"], data={"grant_type": "client_credentials"},
                                         auth=(client_id, client_secret), timeout=10))


def _token_response(response):
    if response.status_code != 200:
        raise LoginRefused(f"the token endpoint answered {response.status_code}: {response.text[:300]}")
    return response.json()


def _follow(browser, response, redirect_uri, hops=10):
    """Follow redirects until the client's redirect URI (returns (None, its query))
    or a page the user must act on (returns (response, None))."""
    for _ in range(hops):
        if not response.is_redirect:
            return response, None
        location = urljoin(response.url, response.headers["Location"])
        if location.startswith(redirect_uri):
            return None, {key: values[0] for key, values in parse_qs(urlsplit(location).query).items()}
        response = browser.get(location, allow_redirects=False, timeout=10)
    raise LoginRefused(f"more than {hops} redirects")


class _Form(HTMLParser):
    """The first form of a page (its action) and any alert shown above it."""

    def __init__(self):
        super().__init__()
        self.action = None
        self.alert = None
        self._in_alert = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form" and self.action is None:
            self.action = attrs.get("action") or ""
        self._in_alert = attrs.get("role") == "alert"

    def handle_data(self, data):
        if self._in_alert:
            self.alert = (self.alert or "") + data

    def handle_endtag(self, tag):
        self._in_alert = False


def _form_of(page):
    form = _Form()
    form.feed(page.text)
    if form.action is None:
        raise LoginRefused(f"no login form but HTTP {page.status_code}: {form.alert or page.text[:200]}")
    return form


def local_token(user_id=None, client_id=None):
    """``wangge-admin token``: an access token from ``make run``'s provider for a demo
    user or a client whose secret is in the local secrets file; (token, one line about it)."""
    local = settings()
    try:
        if user_id:
            tokens = user_tokens(local["issuer"], user_id, local["password"])
        else:
            known = json.loads(local["secrets_file"].read_text()) if local["secrets_file"].exists() else {}
            if client_id not in known:
                listed = ", ".join(known) or "none"
                raise LoginRefused(f"no secret for client {client_id} in {local['secrets_file']} (known: {listed})")
            tokens = client_tokens(local["issuer"], client_id, known[client_id])
    except requests.ConnectionError:
        raise LoginRefused(f"no identity provider answers at {local['issuer']}: start it with `make run`") from None
    about = f"access token for {user_id or client_id} from {local['issuer']}, expires in {tokens['expires_in']} s"
    return tokens["access_token"], about
