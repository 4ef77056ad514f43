"""One broker account per system that sends requests (a 12345 hotline, a WeChat
platform, …), made through RabbitMQ's management API by ``wangge-admin integrators``.

The account ``integrator-<source>`` may publish to ``wangge.inbound`` only with the
routing key ``request.<source>`` (RabbitMQ's topic authorisation), and read only its
own results queue ``wangge.outbound.<source>``; it may declare nothing. Disabling an
account takes its permissions away and closes its connections; rotating gives it a
new password and closes the connections that used the old one.

Each system also gets an Open311 API key for ``/open311/v2/`` (:class:`Open311Keys`):
intake issues it and keeps its digest; adding and rotating issue a new one, disabling
revokes it.
"""
import re
import secrets
from dataclasses import dataclass
from urllib.parse import quote, unquote, urlsplit

import requests
from kombu import Connection

from wangge import topology

ACCOUNT_PREFIX = "integrator-"
# A source is one word of a routing key (no dots, no wildcards), and what intake accepts
# as the source of a request (services/intake/schemas.py): an account for any other name
# could publish nothing intake files.
SOURCE_PATTERN = re.compile(r"^[a-z0-9_]{1,32}$")
# The channels residents file through, which intake also takes as the source of their own
# requests: a system named after one would be given those requests by its Open311 key.
CHANNELS = ("wechat_group", "hotline", "web", "visit", "external")
PASSWORD_BYTES = 24


class IntegratorError(RuntimeError):
    """A refused command; the message says why."""


@dataclass(frozen=True)
class Management:
    """RabbitMQ's management API for one vhost."""

    api: str
    auth: tuple
    vhost: str

    @classmethod
    def at(cls, management_url, vhost):
        parts = urlsplit(management_url)
        auth = (unquote(parts.username or "guest"), unquote(parts.password or "guest"))
        return cls(f"{parts.scheme}://{parts.hostname}:{parts.port or 15672}/api", auth, vhost)

    @property
    def quoted_vhost(self):
        return quote(self.vhost, safe="")

    def call(self, method, path, **kwargs):
        response = requests.request(method, f"{self.api}{path}", auth=self.auth, timeout=30, **kwargs)
        if response.status_code == 404 and method in ("GET", "DELETE"):
            return None
        response.raise_for_status()
        return response.json() if response.content else None


def account_name(source):
    """Not checked: an account made under an earlier, wider rule (``-``, up to 40
    characters) can still be rotated and disabled."""
    return f"{ACCOUNT_PREFIX}{source}"


def check_source(source):
    """What a new account may be named."""
    if not SOURCE_PATTERN.match(source or ""):
        raise IntegratorError(f"{source!r} is not a source: use 1 to 32 lowercase letters, digits or '_'.")
    if source in CHANNELS:
        raise IntegratorError(f"{source!r} is not a source: it is a channel residents file through ({', '.join(CHANNELS)}).")


def permissions(source):
    """(vhost permissions, topic permissions) of a system's account."""
    queue = re.escape(topology.outbound_queue_name(source))
    return (
        {"configure": "^$", "write": f"^{re.escape(topology.INBOUND_EXCHANGE_NAME)}$", "read": f"^{queue}$"},
        {"exchange": topology.INBOUND_EXCHANGE_NAME, "write": f"^request\\.{re.escape(source)}$", "read": "^$"},
    )


def add(management, amqp_uri, source):
    """Make the account, its permissions and its results queue; returns the new password."""
    check_source(source)
    user = account_name(source)
    if management.call("GET", f"/users/{quote(user, safe='')}") is not None:
        raise IntegratorError(f"{user} exists already: use rotate for a new password, or disable it.")
    password = secrets.token_urlsafe(PASSWORD_BYTES)
    management.call("PUT", f"/users/{quote(user, safe='')}", json={"password": password, "tags": ""})
    grant(management, source)
    with Connection(amqp_uri) as connection:
        channel = connection.default_channel
        topology.outbound_exchange()(channel).declare()
        topology.outbound_queue(source)(channel).declare()
    return password


def grant(management, source):
    user = quote(account_name(source), safe="")
    vhost_permissions, topic_permissions = permissions(source)
    management.call("PUT", f"/permissions/{management.quoted_vhost}/{user}", json=vhost_permissions)
    management.call("PUT", f"/topic-permissions/{management.quoted_vhost}/{user}", json=topic_permissions)


def disable(management, source):
    """Take the account's permissions away and close its connections; returns how many were closed."""
    user = quote(account_name(source), safe="")
    if management.call("GET", f"/users/{user}") is None:
        raise IntegratorError(f"No account {account_name(source)}.")
    management.call("DELETE", f"/permissions/{management.quoted_vhost}/{user}")
    management.call("DELETE", f"/topic-permissions/{management.quoted_vhost}/{user}")
    return close_connections(management, account_name(source))


def rotate(management, source):
    """A new password; connections made with the old one are closed. Returns the password."""
    user = account_name(source)
    if management.call("GET", f"/users/{quote(user, safe='')}") is None:
        raise IntegratorError(f"No account {user}.")
    password = secrets.token_urlsafe(PASSWORD_BYTES)
    management.call("PUT", f"/users/{quote(user, safe='')}", json={"password": password, "tags": ""})
    close_connections(management, user)
    return password


def close_connections(management, user):
    closed = 0
    for connection in management.call("GET", "/connections", params={"columns": "name,user"}) or []:
        if connection.get("user") == user:
            management.call("DELETE", f"/connections/{quote(connection['name'], safe='')}",
                            headers={"X-Reason": "integrator account changed"})
            closed += 1
    return closed


def accounts(management):
    """[(source, enabled)] of every system's account, enabled when it holds permissions here."""
    permitted = {entry["user"] for entry in management.call("GET", f"/vhosts/{management.quoted_vhost}/permissions") or []}
    return sorted(
        (user["name"][len(ACCOUNT_PREFIX):], user["name"] in permitted)
        for user in management.call("GET", "/users") or [] if user["name"].startswith(ACCOUNT_PREFIX)
    )


class Open311Keys:
    """Intake's Open311 API keys of the systems, through its administrator's endpoints
    (``session`` sends a county administrator's token)."""

    def __init__(self, session, intake_url):
        self.session = session
        self.url = f"{intake_url.rstrip('/')}/api/v1/integrators"

    def issue(self, source):
        """A new key for the system (its previous one stops working)."""
        return self._call("POST", f"/{quote(source, safe='')}/open311-key", (201,))["api_key"]

    def revoke(self, source):
        """``True`` if the system held a key."""
        return self._call("DELETE", f"/{quote(source, safe='')}/open311-key", (200, 404)) is not None

    def holders(self):
        return {item["source"] for item in self._call("GET", "/open311-keys", (200,))["items"]}

    def _call(self, method, path, expected):
        try:
            response = self.session.request(method, f"{self.url}{path}", timeout=30)
        except requests.RequestException as exc:
            raise IntegratorError(f"intake at {self.url} does not answer: {exc}") from exc
        if response.status_code not in expected:
            try:
                message = response.json().get("message")
            except ValueError:
                message = response.text[:200]
            raise IntegratorError(f"intake refused {method} {path}: HTTP {response.status_code}: {message}")
        return None if response.status_code == 404 else response.json()
