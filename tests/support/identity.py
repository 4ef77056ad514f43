"""The real local OpenID Connect provider (devstack/identity) on a free port, with a
few demo users and every platform client, for tests that need tokens."""
import time
from contextlib import contextmanager
from dataclasses import dataclass, field

from devstack.identity import (
    client_secrets, client_tokens, endpoints, machine_client_ids, platform_clients, start_identity_answering, user,
    user_tokens,
)
from tests.support.ports import free_port

PASSWORD = "test-password"
# One of each kind of person the demo county has (devstack.identity.demo_users), with their ids there.
USERS = [
    user("county-admin", ["county_admin"], "县网格管理员"),
    user("county-center", ["county_center"], "县网格化服务管理中心"),
    user("operator", ["operator"]),
    user("editor", ["study_editor"]),
    user("w-zc-nanmen-02-h", ["grid_head"], "林美华"),
    user("w-zc-nanmen-02-1", ["grid_worker"], "余雪华"),
    user("lead-zhangcheng", ["town_lead"], "樟城镇负责人"),
    user("lead-zc-nanmen", ["community_lead"], "南门社区负责人"),
    user("dept-power", ["department"], "县供电公司路灯所"),
    # routing's area tests: a grid beside 南门 02, and a case's way up in 城峰镇 to a department
    user("w-zc-nanmen-01-1", ["grid_worker"], "王国"),
    user("w-zc-nanmen-01-2", ["grid_worker"], "刘雪琳"),
    user("w-cf-yuzhou-01-1", ["grid_worker"], "池英玉"),
    user("lead-cf-yuzhou", ["community_lead"], "玉洲社区网格站"),
    user("lead-chengfeng", ["town_lead"], "城峰镇网格办"),
    user("dept-civil_affairs", ["department"], "县民政局"),
]


@dataclass
class LocalIdentity:
    issuer: str
    jwks_uri: str
    password: str
    secrets_file: str
    secrets: dict = field(repr=False)
    started_in: float = 0.0
    _tokens: dict = field(default_factory=dict, repr=False)

    def tokens_for(self, user_id, password=None, **options):
        """The whole token response of a login (access_token, id_token, …)."""
        return user_tokens(self.issuer, user_id, self.password if password is None else password, **options)

    def token_for(self, user_id, password=None):
        return self.tokens_for(user_id, password)["access_token"]

    def client_token(self, client_id, secret=None):
        return client_tokens(self.issuer, client_id, secret or self.secrets[client_id])["access_token"]

    def cached_token(self, principal):
        """A token for a user id or (``integrator-…``, ``wangge-services``, ``alertmanager``) a client id,
        reused for the session (tokens last an hour)."""
        if principal not in self._tokens:
            is_client = principal in self.secrets
            self._tokens[principal] = self.client_token(principal) if is_client else self.token_for(principal)
        return self._tokens[principal]

    def service_settings(self):
        """The AUTH_* environment a service process needs to trust this provider
        (and, for study, to call routing as the ``wangge-services`` client)."""
        return {
            "AUTH_ISSUER": self.issuer, "AUTH_JWKS_URI": self.jwks_uri, "AUTH_TOKEN_URL": f"{self.issuer}/token",
            "AUTH_CLIENT_ID": "wangge-services", "AUTH_CLIENT_SECRET": self.secrets["wangge-services"],
        }


@contextmanager
def running_identity(directory, users=USERS):
    """Start the provider; raises IdentityUnavailable (one line) if Node.js or its packages are missing."""
    started = time.monotonic()
    issuer = f"http://127.0.0.1:{free_port()}"
    secrets_file = directory / "client-secrets.json"
    secrets = client_secrets(secrets_file, machine_client_ids())
    process = start_identity_answering(issuer, directory, users, platform_clients(secrets), PASSWORD, directory / "identity.log")
    try:
        yield LocalIdentity(issuer, endpoints(issuer)["jwks_uri"], PASSWORD, str(secrets_file), secrets,
                            started_in=time.monotonic() - started)
    finally:
        process.stop()
