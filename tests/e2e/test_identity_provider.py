"""The local identity provider issues what the services will verify: access tokens
that are JWTs signed with a key of its JWKS, for the audience wangge-api, naming the
user (or client) and their roles; and none without the right password or secret."""
import os
import subprocess
import sys
from pathlib import Path

import jwt
import pytest

from devstack.identity import AUDIENCE, WEB_CLIENT, LoginRefused

pytestmark = pytest.mark.e2e

# What the services will accept: asymmetric algorithms only, never HS* or none.
ASYMMETRIC = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"]
WANGGE_ADMIN = Path(sys.executable).with_name("wangge-admin")


def verified(identity, token, audience=AUDIENCE):
    """The token's claims, checked as a service will check them, or PyJWT's error."""
    key = jwt.PyJWKClient(identity.jwks_uri).get_signing_key_from_jwt(token)
    return jwt.decode(token, key.key, algorithms=ASYMMETRIC, audience=audience, issuer=identity.issuer,
                      options={"require": ["exp", "iat", "iss", "aud", "sub"]})


def test_user_token_is_a_jwt_for_the_api_signed_with_a_key_of_the_jwks(identity):
    token = identity.token_for("w-zc-nanmen-02-1")

    claims = verified(identity, token)
    assert jwt.get_unverified_header(token)["typ"] == "at+jwt"
    assert claims["iss"] == identity.issuer and claims["aud"] == "wangge-api"
    assert claims["sub"] == "w-zc-nanmen-02-1"
    assert claims["roles"] == ["grid_worker"]
    assert claims["name"] == "余雪华"
    assert claims["client_id"] == WEB_CLIENT


@pytest.mark.parametrize("user_id, roles", [
    ("county-admin", ["county_admin"]), ("lead-zhangcheng", ["town_lead"]), ("lead-zc-nanmen", ["community_lead"]),
    ("dept-power", ["department"]),
])
def test_each_user_gets_their_own_roles(identity, user_id, roles):
    claims = verified(identity, identity.token_for(user_id))
    assert (claims["sub"], claims["roles"]) == (user_id, roles)


def test_id_token_tells_the_web_app_who_signed_in(identity):
    tokens = identity.tokens_for("w-zc-nanmen-02-h")

    claims = verified(identity, tokens["id_token"], audience=WEB_CLIENT)
    assert (claims["sub"], claims["roles"], claims["name"]) == ("w-zc-nanmen-02-h", ["grid_head"], "林美华")


def test_web_app_dev_servers_may_receive_the_code_on_any_path(identity):
    token = identity.tokens_for("editor", redirect_uri="http://localhost:5173/auth/callback")["access_token"]
    assert verified(identity, token)["roles"] == ["study_editor"]


def test_redirect_to_any_other_site_is_refused(identity):
    with pytest.raises(LoginRefused, match="redirect_uri"):
        identity.tokens_for("editor", redirect_uri="http://localhost:5174/auth/callback")


def test_integrator_token_carries_its_source(identity):
    claims = verified(identity, identity.client_token("integrator-hotline12345"))
    assert claims["sub"] == "integrator-hotline12345"
    assert (claims["roles"], claims["source"]) == (["integrator"], "hotline12345")


@pytest.mark.parametrize("client_id, role", [("wangge-services", "service"), ("alertmanager", "alertmanager")])
def test_machine_clients_get_their_role(identity, client_id, role):
    claims = verified(identity, identity.client_token(client_id))
    assert (claims["sub"], claims["roles"]) == (client_id, [role])
    assert "source" not in claims


@pytest.mark.parametrize("user_id, password", [("county-admin", "not-the-password"), ("nobody", None)])
def test_wrong_password_or_unknown_user_gets_no_token(identity, user_id, password):
    with pytest.raises(LoginRefused, match="wrong password"):
        identity.token_for(user_id, password=password)


def test_wrong_client_secret_gets_no_token(identity):
    with pytest.raises(LoginRefused, match="401"):
        identity.client_token("wangge-services", secret="not-the-secret")


def run_admin_token(identity, *args):
    env = {**os.environ, "WANGGE_IDENTITY_ISSUER": identity.issuer, "WANGGE_DEMO_PASSWORD": identity.password,
           "WANGGE_IDENTITY_SECRETS_FILE": identity.secrets_file}
    return subprocess.run([str(WANGGE_ADMIN), "token", *args], env=env, capture_output=True, text=True, timeout=60)


def test_wangge_admin_token_prints_a_verifiable_user_token(identity):
    result = run_admin_token(identity, "--user", "county-admin")

    assert result.returncode == 0, result.stderr
    claims = verified(identity, result.stdout.strip().splitlines()[-1])
    assert (claims["sub"], claims["roles"]) == ("county-admin", ["county_admin"])


def test_wangge_admin_token_for_a_client_and_a_refusal(identity):
    result = run_admin_token(identity, "--client", "integrator-hotline12345")
    assert result.returncode == 0, result.stderr
    assert verified(identity, result.stdout.strip().splitlines()[-1])["source"] == "hotline12345"

    refused = run_admin_token(identity, "--user", "nobody")
    assert refused.returncode == 1 and refused.stdout == ""
    assert "wrong password" in refused.stderr


def test_a_provider_that_stays_silent_is_started_again(tmp_path, monkeypatch):
    from devstack import identity as provider_module
    from devstack.processes import ManagedProcess
    from tests.support.ports import free_port

    real_start, started = provider_module.start_identity, []

    def silent_first(issuer, *args, **kwargs):
        # alive and never answering, as one was once on a busy machine; then the real one
        process = ManagedProcess("identity", ["sleep", "120"], tmp_path / "silent.log").start() if not started \
            else real_start(issuer, *args, **kwargs)
        started.append(process)
        return process

    monkeypatch.setattr(provider_module, "start_identity", silent_first)
    issuer = f"http://127.0.0.1:{free_port()}"
    users = [{"id": "w-1", "name": "李梅", "roles": ["grid_worker"]}]
    process = provider_module.start_identity_answering(issuer, tmp_path, users, [], "pw", tmp_path / "identity.log", timeout=3)
    try:
        assert len(started) == 2 and started[0].exited() and process is started[1]
        assert provider_module.discovery_answers(issuer)
    finally:
        process.stop()
