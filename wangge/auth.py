"""Who is calling: bearer access tokens from the county's OpenID Connect provider.

Every service verifies tokens itself (not only the gateway): the signature
against the provider's published keys (JWKS, cached, fetched again when a token
names a key not seen yet, at most every ``KEY_REFRESH_SECONDS``), the issuer, the
audience, ``exp``/``nbf`` with a small leeway, and an allow-list of asymmetric
algorithms (``none`` and HMAC are refused, so a token "signed" with the public
key gets nowhere). Verification is PyJWT's; nothing here is cryptography.
"""
import threading
import time
from dataclasses import dataclass, field

import jwt
import requests
from jwt import PyJWKClient
from nameko.extensions import SharedExtension

from wangge.errors import ApiError

ASYMMETRIC_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")
# A flood of tokens naming made-up keys must not turn into a flood of JWKS fetches.
KEY_REFRESH_SECONDS = 30.0


class Unauthenticated(ApiError):
    http_status = 401
    error_code = "unauthenticated"
    headers = {"WWW-Authenticate": 'Bearer realm="wangge"'}


class Forbidden(ApiError):
    http_status = 403
    error_code = "forbidden"


class MissingPermission(Forbidden):
    def __init__(self, permission):
        super().__init__(f"Your roles do not include the permission {permission.name}.",
                         {"permission": [f"Needs one of the roles: {', '.join(permission.roles)}."]})
        self.details = {"permission": permission.name}


@dataclass(frozen=True)
class Caller:
    """The verified subject of a token and what the provider says it is."""

    subject: str
    roles: frozenset = field(default_factory=frozenset)
    source: str | None = None  # integrators: the one source they may speak for
    name: str | None = None

    def has_any(self, roles):
        return bool(self.roles & set(roles))


def claim_at(claims, path):
    """``realm_access.roles`` → ``claims["realm_access"]["roles"]`` (Keycloak keeps roles there)."""
    value = claims
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


class TokenVerifier:
    def __init__(self, *, issuer, audience, jwks_uri, leeway_seconds=30, algorithms=ASYMMETRIC_ALGORITHMS,
                 roles_claim="roles", source_claim="source", subject_claim="sub", timeout=5):
        unsafe = set(algorithms) - set(ASYMMETRIC_ALGORITHMS)
        if unsafe:
            raise ValueError(f"only asymmetric algorithms may verify tokens, not {sorted(unsafe)}")
        self.issuer, self.audience = issuer, audience
        self.leeway, self.algorithms = float(leeway_seconds), list(algorithms)
        self.roles_claim, self.source_claim = roles_claim, source_claim
        # Who the person is in the grid registry: ``sub`` locally; with Keycloak,
        # whose ``sub`` is its own id, the username (``preferred_username``).
        self.subject_claim = subject_claim
        self.keys = PyJWKClient(jwks_uri, cache_jwk_set=True, lifespan=300, timeout=timeout)
        self._refreshed_at = float("-inf")
        self._lock = threading.Lock()

    @classmethod
    def from_config(cls, auth):
        return cls(
            issuer=auth["ISSUER"], audience=auth["AUDIENCE"], jwks_uri=auth["JWKS_URI"],
            leeway_seconds=auth["LEEWAY_SECONDS"], roles_claim=auth["ROLES_CLAIM"], source_claim=auth["SOURCE_CLAIM"],
            subject_claim=auth["SUBJECT_CLAIM"],
        )

    def verify(self, token):
        """The :class:`Caller` a token speaks for, or :class:`Unauthenticated` saying why not."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise Unauthenticated("The bearer token is not a JWT.") from exc
        if header.get("alg") not in self.algorithms:
            raise Unauthenticated(f"Tokens signed with {header.get('alg')!r} are not accepted.")
        key = self._signing_key(header.get("kid"))
        if key.algorithm_name != header.get("alg"):
            # the key says which algorithm it is for: an ES256 header on an RSA key is forged
            raise Unauthenticated(f"Tokens signed with {header.get('alg')!r} are not accepted for this key.")
        try:
            claims = jwt.decode(
                token, key.key, algorithms=[key.algorithm_name], audience=self.audience, issuer=self.issuer,
                leeway=self.leeway, options={"require": ["exp", "iat", "iss", "aud", "sub"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise Unauthenticated("The bearer token has expired.") from exc
        except (jwt.PyJWTError, TypeError, ValueError) as exc:  # a malformed token is never a 500
            raise Unauthenticated(f"The bearer token is not valid: {exc}.") from exc
        subject = claim_at(claims, self.subject_claim)
        if not isinstance(subject, str) or not subject:
            raise Unauthenticated(f"The bearer token names no {self.subject_claim}.")
        roles = claim_at(claims, self.roles_claim) or []
        source = claims.get(self.source_claim)
        return Caller(
            subject=subject,
            roles=frozenset(role for role in roles if isinstance(role, str)) if isinstance(roles, list) else frozenset(),
            source=source if isinstance(source, str) and source else None,
            name=claims.get("name"),
        )

    def _signing_key(self, kid):
        try:
            keys = self.keys.get_signing_keys()
            found = next((k for k in keys if k.key_id == kid), None)
            if found is None and self._may_refresh():
                found = next((k for k in self.keys.get_signing_keys(refresh=True) if k.key_id == kid), None)
        except (jwt.PyJWKClientError, jwt.PyJWKSetError) as exc:
            raise Unauthenticated("The identity provider's keys cannot be read; try again shortly.") from exc
        if found is None:
            raise Unauthenticated("The bearer token is signed with a key the identity provider does not publish.")
        return found

    def _may_refresh(self):
        with self._lock:
            now = time.monotonic()
            if now - self._refreshed_at < KEY_REFRESH_SECONDS:
                return False
            self._refreshed_at = now
            return True


def bearer_token(request):
    """The token of an ``Authorization: Bearer …`` header, or :class:`Unauthenticated`."""
    scheme, _, token = (request.headers.get("Authorization") or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("This endpoint needs a bearer token (Authorization: Bearer …).")
    return token.strip()


class Authenticator(SharedExtension):
    """One token verifier per service process (the JWKS cache is shared by every
    endpoint), from the service's ``AUTH`` settings."""

    def setup(self):
        self.verifier = TokenVerifier.from_config(self.container.config["AUTH"])

    def caller_for(self, request, permission):
        """The verified caller, ``None`` for an anonymous call to a public endpoint,
        or ``Unauthenticated``/``Forbidden``."""
        if permission.public and not request.headers.get("Authorization"):
            return None
        caller = self.verifier.verify(bearer_token(request))
        if not permission.allows(caller.roles):
            raise MissingPermission(permission)
        return caller


class ServiceCredentials:
    """An access token of this service's own client (client credentials), for the
    few calls one service makes to another; fetched again shortly before it expires."""

    def __init__(self, token_url, client_id, client_secret, timeout=5):
        self.token_url, self.client_id, self.client_secret, self.timeout = token_url, client_id, client_secret, timeout
        self._token, self._expires_at = None, 0.0
        self._lock = threading.Lock()

    @classmethod
    def from_config(cls, auth):
        return cls(auth["TOKEN_URL"], auth["CLIENT_ID"], auth["CLIENT_SECRET"])

    def authorization(self):
        """``{"Authorization": "Bearer …"}`` for a request to another service."""
        with self._lock:
            if self._token is None or time.monotonic() > self._expires_at:
                response = requests.post(self.token_url, data={"grant_type": "client_credentials"},
                                         auth=(self.client_id, self.client_secret), timeout=self.timeout)
                response.raise_for_status()
                answer = response.json()
                self._token = answer["access_token"]
                # a minute early, so a token never expires on its way
                self._expires_at = time.monotonic() + max(int(answer.get("expires_in", 300)) - 60, 30)
            return {"Authorization": f"Bearer {self._token}"}
