"""Token verification against keys published by a real HTTP server, and the
attacks a verifier must refuse."""
import base64
import hashlib
import hmac
import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from tests.support.json_server import JsonHandler, serving
from wangge.auth import TokenVerifier, Unauthenticated

ISSUER, AUDIENCE = "http://idp.test/realm", "wangge-api"


class Provider:
    """Signing keys and a JWKS endpoint that counts how often it is read."""

    def __init__(self):
        self.keys = {}
        self.published = []
        self.fetches = 0
        self.add_key("k1")

    def add_key(self, kid, publish=True):
        self.keys[kid] = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        if publish:
            self.published.append(kid)

    def jwks(self):
        return {"keys": [{**RSAAlgorithm.to_jwk(self.keys[kid].public_key(), as_dict=True), "kid": kid, "use": "sig", "alg": "RS256"}
                         for kid in self.published]}

    def token(self, kid="k1", **overrides):
        now = int(time.time())
        claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "w-001", "iat": now, "exp": now + 300,
                  "roles": ["grid_worker"], "name": "李梅", **overrides}
        claims = {key: value for key, value in claims.items() if value is not None}
        return jwt.encode(claims, self.keys[kid], algorithm="RS256", headers={"kid": kid})


@pytest.fixture
def provider():
    provider = Provider()

    class Handler(JsonHandler):
        def do_GET(self):
            provider.fetches += 1
            self.answer_json(200, provider.jwks())

    with serving(Handler) as base_url:
        provider.jwks_uri = f"{base_url}/jwks"
        yield provider


@pytest.fixture
def verifier(provider):
    return TokenVerifier(issuer=ISSUER, audience=AUDIENCE, jwks_uri=provider.jwks_uri, leeway_seconds=10)


def b64(data):
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def test_a_valid_token_names_its_subject_roles_and_source(provider, verifier):
    caller = verifier.verify(provider.token(roles=["integrator"], source="hotline12345"))
    assert (caller.subject, caller.roles, caller.source) == ("w-001", frozenset({"integrator"}), "hotline12345")


def test_roles_can_be_read_from_a_nested_claim(provider):
    verifier = TokenVerifier(issuer=ISSUER, audience=AUDIENCE, jwks_uri=provider.jwks_uri, roles_claim="realm_access.roles")
    caller = verifier.verify(provider.token(roles=None, realm_access={"roles": ["county_admin"]}))
    assert caller.roles == {"county_admin"}


# claims as of the moment the token is made (a suite runs for minutes after it collects these)
@pytest.mark.parametrize("claims, reason", [
    (lambda now: {"exp": now - 60}, "expired"),
    (lambda now: {"nbf": now + 600}, "not valid"),
    (lambda now: {"iss": "http://evil.test/realm"}, "not valid"),
    (lambda now: {"aud": "another-api"}, "not valid"),
    (lambda now: {"sub": None}, "not valid"),
], ids=["expired", "not_yet_valid", "another_issuer", "another_audience", "no_subject"])
def test_tokens_with_wrong_claims_are_refused(provider, verifier, claims, reason):
    with pytest.raises(Unauthenticated, match=reason):
        verifier.verify(provider.token(**claims(int(time.time()))))


def test_a_token_within_the_leeway_is_accepted(provider, verifier):
    assert verifier.verify(provider.token(exp=int(time.time()) - 5)).subject == "w-001"


def test_alg_none_is_refused(provider, verifier):
    header, payload, _ = provider.token().split(".")
    unsigned = f"{b64({'alg': 'none', 'typ': 'JWT', 'kid': 'k1'})}.{payload}."
    with pytest.raises(Unauthenticated, match="not accepted"):
        verifier.verify(unsigned)


def test_hmac_signed_with_the_public_key_is_refused(provider, verifier):
    public_pem = provider.keys["k1"].public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    claims = jwt.decode(provider.token(), options={"verify_signature": False})
    header = b64({"alg": "HS256", "typ": "JWT", "kid": "k1"})
    payload = b64(claims)
    signature = base64.urlsafe_b64encode(
        hmac.new(public_pem, f"{header}.{payload}".encode(), hashlib.sha256).digest()).rstrip(b"=").decode()
    with pytest.raises(Unauthenticated, match="not accepted"):
        verifier.verify(f"{header}.{payload}.{signature}")


def test_a_tampered_payload_is_refused(provider, verifier):
    header, payload, signature = provider.token().split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    forged = b64({**claims, "roles": ["county_admin"]})
    with pytest.raises(Unauthenticated, match="not valid"):
        verifier.verify(f"{header}.{forged}.{signature}")


def test_a_key_the_provider_does_not_publish_is_refused_and_fetches_are_bounded(provider, verifier):
    verifier.verify(provider.token())
    provider.add_key("rogue", publish=False)
    fetches = provider.fetches
    for _ in range(5):
        with pytest.raises(Unauthenticated, match="does not publish"):
            verifier.verify(provider.token(kid="rogue"))
    assert provider.fetches - fetches <= 1


def test_a_rotated_key_is_picked_up_when_a_token_first_names_it(provider, verifier):
    verifier.verify(provider.token())
    provider.add_key("k2")
    assert verifier.verify(provider.token(kid="k2")).subject == "w-001"


@pytest.mark.parametrize("token", ["", "not-a-jwt", "a.b.c"])
def test_garbage_is_refused(verifier, token):
    with pytest.raises(Unauthenticated):
        verifier.verify(token)


def test_only_asymmetric_algorithms_may_be_configured(provider):
    with pytest.raises(ValueError):
        TokenVerifier(issuer=ISSUER, audience=AUDIENCE, jwks_uri=provider.jwks_uri, algorithms=["RS256", "HS256"])


def test_the_person_can_be_read_from_another_claim(provider):
    verifier = TokenVerifier(issuer=ISSUER, audience=AUDIENCE, jwks_uri=provider.jwks_uri, subject_claim="preferred_username")
    token = provider.token(sub="0b6e1f2a-keycloak-id", preferred_username="w-zc-nanmen-02-1")
    assert verifier.verify(token).subject == "w-zc-nanmen-02-1"
    with pytest.raises(Unauthenticated, match="preferred_username"):
        verifier.verify(provider.token(sub="0b6e1f2a-keycloak-id"))


def test_a_header_naming_another_algorithm_than_the_keys_is_refused_not_a_crash(provider, verifier):
    header, payload, signature = provider.token().split(".")
    forged = f"{b64({'alg': 'ES256', 'typ': 'JWT', 'kid': 'k1'})}.{payload}.{signature}"
    with pytest.raises(Unauthenticated, match="not accepted for this key"):
        verifier.verify(forged)


def test_a_source_that_is_not_a_name_is_ignored(provider, verifier):
    assert verifier.verify(provider.token(roles=["integrator"], source=["hotline12345", "wechat"])).source is None
