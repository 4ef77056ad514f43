"""Root fixtures: monkey-patch first (plain pytest hangs on nameko containers
otherwise), then a real store and a throwaway RabbitMQ vhost for the session."""
import os
import uuid
import warnings

warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")

import eventlet  # noqa: E402

eventlet.monkey_patch()

import pytest  # noqa: E402

from devstack.identity import node_problem  # noqa: E402
from tests.support.broker import throwaway_vhost  # noqa: E402
from tests.support.identity import running_identity  # noqa: E402
from tests.support.services import set_active_identity  # noqa: E402
from tests.support.store import running_store  # noqa: E402
from wangge.mongo import connect  # noqa: E402


@pytest.fixture(scope="session")
def mongo_uri(tmp_path_factory):
    with running_store(tmp_path_factory.mktemp("store")) as uri:
        yield uri


@pytest.fixture
def scratch_database(mongo_uri):
    """A database of the test's own on the session's store, for tests that set up a store by hand."""
    client = connect(mongo_uri)
    yield client[f"scratch_{uuid.uuid4().hex[:8]}"]
    client.close()


@pytest.fixture(scope="session")
def amqp_uri():
    with throwaway_vhost() as uri:
        yield uri


@pytest.fixture(scope="module")
def module_amqp_uri():
    """A vhost of the module's own, for tests that run their own set of services."""
    with throwaway_vhost() as uri:
        yield uri


@pytest.fixture(scope="session")
def identity(tmp_path_factory):
    """The local OpenID Connect provider: ``issuer``, ``jwks_uri``, ``token_for(user_id)``,
    ``client_token(client_id)``. Fails, saying why, where Node.js or its packages are missing."""
    problem = node_problem()
    if problem:
        pytest.fail(f"the identity provider cannot run: {problem}", pytrace=False)
    with running_identity(tmp_path_factory.mktemp("identity")) as provider:
        yield provider


@pytest.fixture(scope="session", autouse=True)
def services_trust_the_test_identity(identity):
    """Every service process a test starts trusts the test's provider (its AUTH_*
    settings come from the environment), and ``RunningService.as_user`` gets tokens from it."""
    saved = {key: os.environ.get(key) for key in identity.service_settings()}
    os.environ.update(identity.service_settings())
    set_active_identity(identity)
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
