"""One broker account and one Open311 API key per system: `wangge-admin integrators`
against the real RabbitMQ (a vhost of the module's own) and a real intake, and what the
account and the key may and may not do."""
import uuid
from urllib.parse import quote

import pytest
import requests
from amqp.exceptions import AccessRefused, NotAllowed
from kombu import Connection, Exchange, Queue

from tests.support.broker import DEFAULT_MANAGEMENT_URL
from tests.support.integrators import as_account, integrators_admin, issued, new_source, remove_account
from tests.support.ports import free_port
from tests.support.services import running_service
from wangge import topology

REFUSED = (AccessRefused, NotAllowed)


@pytest.fixture(scope="module")
def vhost_uri(module_amqp_uri):
    with Connection(module_amqp_uri) as connection:
        topology.declare_topology(connection)
    return module_amqp_uri


@pytest.fixture
def source():
    """A system of this test's own; its account is removed afterwards."""
    name = new_source()
    yield name
    remove_account(name)


@pytest.fixture(scope="module")
def intake(vhost_uri, mongo_uri, tmp_path_factory):
    """Where the systems' Open311 API keys are kept."""
    with running_service("intake", amqp_uri=vhost_uri, mongo_uri=mongo_uri, log_dir=tmp_path_factory.mktemp("logs")) as service:
        yield service


@pytest.fixture
def admin(vhost_uri, intake):
    """``wangge-admin integrators …`` as the operator runs it, with a county administrator's token."""
    return integrators_admin(vhost_uri, intake)


def open311_listing(intake, api_key):
    """What intake answers a system listing its requests with this key: 200, or 403 for a key that is not valid."""
    return requests.get(intake.url("/open311/v2/requests.json"), params={"api_key": api_key}, timeout=10).status_code


def publish(connection, routing_key):
    connection.Producer(connection.channel()).publish(
        b"{}", exchange=Exchange(topology.INBOUND_EXCHANGE_NAME, type="topic", passive=True), routing_key=routing_key,
        content_type="application/json", message_id=uuid.uuid4().hex, retry=False)


def test_a_systems_account_publishes_under_its_own_source_and_reads_its_own_results_only(vhost_uri, admin, source):
    password, _ = issued(admin("add", source))

    with as_account(vhost_uri, source, password) as connection:
        publish(connection, f"request.{source}")  # confirmed: no exception
        assert connection.channel().basic_get(topology.outbound_queue_name(source), no_ack=True) is None
    for attempt in ("another_source", "another_queue", "declare"):
        with as_account(vhost_uri, source, password) as connection, pytest.raises(REFUSED):
            if attempt == "another_source":
                publish(connection, "request.hotline12345")
            elif attempt == "another_queue":
                connection.channel().basic_get(topology.outbound_queue_name("hotline12345"), no_ack=True)
            else:
                Queue("sneaky", durable=True)(connection.channel()).declare()

    again = admin("add", source)
    assert again.returncode == 1 and "exists already" in again.stderr
    assert f"{source}\tenabled\topen311" in admin("list").stdout.splitlines()


def test_adding_a_system_issues_its_open311_key_last_and_rotating_and_disabling_revoke_it(intake, admin, source):
    _, key = issued(admin("add", source))
    assert open311_listing(intake, key) == 200
    _, new_key = issued(admin("rotate", source))
    assert new_key != key
    assert (open311_listing(intake, key), open311_listing(intake, new_key)) == (403, 200)
    disabled = admin("disable", source)
    assert disabled.returncode == 0 and "Open311 API key revoked" in disabled.stdout
    assert open311_listing(intake, new_key) == 403
    assert f"{source}\tdisabled\tno open311 key" in admin("list").stdout.splitlines()


def test_without_an_administrators_token_nothing_is_made(admin, source):
    refused = admin("add", source, token=False)
    assert refused.returncode == 2 and "WANGGE_API_TOKEN" in refused.stderr
    assert requests.get(f"{DEFAULT_MANAGEMENT_URL}/api/users/integrator-{source}", auth=("guest", "guest"), timeout=10).status_code == 404


def test_rotating_a_password_shuts_the_old_one_out_and_disabling_shuts_the_account_out(vhost_uri, admin, source):
    old, _ = issued(admin("add", source))
    new, _ = issued(admin("rotate", source))
    assert new != old
    with pytest.raises(REFUSED), as_account(vhost_uri, source, old) as connection:
        connection.connect()
    with as_account(vhost_uri, source, new) as connection:
        publish(connection, f"request.{source}")

    disabled = admin("disable", source)
    assert disabled.returncode == 0, disabled.stderr
    assert f"{source}\tdisabled\tno open311 key" in admin("list").stdout.splitlines()
    with pytest.raises(REFUSED), as_account(vhost_uri, source, new) as connection:
        connection.connect()


# a channel's name is the source of residents' own requests: its key would list them
@pytest.mark.parametrize("name", ["hot.line#", "hot-line", "web", "hotline", "wechat_group"])
def test_a_source_that_is_not_one_word_of_a_routing_key_or_that_intake_would_refuse_is_refused(admin, name):
    refused = admin("add", name)
    assert refused.returncode == 1 and "is not a source" in refused.stderr


def test_disabling_cuts_the_account_off_even_when_its_key_cannot_be_revoked(vhost_uri, intake, admin, source):
    password, key = issued(admin("add", source))
    disabled = admin("disable", source, token=False)
    assert disabled.returncode == 1 and f"integrator-{source} disabled" in disabled.stdout
    assert "NOT revoked" in disabled.stderr and "WANGGE_API_TOKEN" in disabled.stderr
    with pytest.raises(REFUSED), as_account(vhost_uri, source, password) as connection:
        connection.connect()
    assert open311_listing(intake, key) == 200  # said so: the operator revokes it when intake can be asked
    assert "Open311 API key revoked" in admin("disable", source).stdout


def test_the_list_shows_the_broker_accounts_when_the_keys_cannot_be_listed(admin, source):
    issued(admin("add", source))
    for listing in (admin("list", token=False), admin("list", intake_url=f"http://127.0.0.1:{free_port()}")):
        assert listing.returncode == 1 and "Open311 API key is not known" in listing.stderr
        assert f"{source}\tenabled\topen311 key unknown" in listing.stdout.splitlines()


def test_an_account_named_under_the_earlier_rule_can_still_be_rotated_and_disabled(vhost_uri, admin, source):
    """Names with '-' and up to 40 characters were allowed before; such accounts are not refused now."""
    legacy = f"city-hotline-{source}"
    user = f"{DEFAULT_MANAGEMENT_URL}/api/users/integrator-{legacy}"
    vhost = requests.utils.unquote(vhost_uri.rsplit("/", 1)[1])
    try:
        assert requests.put(user, json={"password": "old-password", "tags": ""}, auth=("guest", "guest"), timeout=10).ok
        assert requests.put(f"{DEFAULT_MANAGEMENT_URL}/api/permissions/{quote(vhost, safe='')}/integrator-{legacy}",
                            json={"configure": "^$", "write": "^$", "read": "^$"}, auth=("guest", "guest"), timeout=10).ok
        rotated = admin("rotate", legacy)
        assert rotated.returncode == 0, rotated.stderr
        password = rotated.stdout.strip().splitlines()[1]
        with as_account(vhost_uri, legacy, password) as connection:
            connection.connect()
        assert "no Open311 API key" in rotated.stderr
        disabled = admin("disable", legacy, token=False)
        assert disabled.returncode == 0 and f"integrator-{legacy} disabled" in disabled.stdout
        assert f"{legacy}\tdisabled\tno open311 key" in admin("list").stdout.splitlines()
    finally:
        requests.delete(user, auth=("guest", "guest"), timeout=10)
