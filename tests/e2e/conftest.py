import uuid
from datetime import datetime, timezone

import pytest
from kombu import Connection

from integration.publish_example import publish_request
from services.intake.storage import RequestStore
from tests.support.services import running_service
from wangge.mongo import connect


@pytest.fixture(scope="session")
def intake_database():
    return f"intake_{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="session")
def intake(amqp_uri, mongo_uri, intake_database, tmp_path_factory):
    with running_service("intake", amqp_uri=amqp_uri, mongo_uri=mongo_uri, database=intake_database,
                         log_dir=tmp_path_factory.mktemp("logs")) as service:
        yield service


@pytest.fixture
def intake_store(intake, mongo_uri, intake_database):
    """The session intake's own store, for the few tests that must set it up as no API can."""
    client = connect(mongo_uri)
    yield RequestStore(client[intake_database])
    client.close()


@pytest.fixture
def publish_inbound(amqp_uri):
    """Publish like an integrator would: returns the message_id used."""
    with Connection(amqp_uri, transport_options={"confirm_publish": True}) as connection:
        def publish(body, message_id=None, source="hotline12345"):
            message_id = message_id or uuid.uuid4().hex
            publish_request(connection, body, message_id=message_id, source=source)
            return message_id
        yield publish


def inbound_body(**overrides):
    body = {
        "source": "hotline12345",
        "submitted_at": datetime.now(timezone.utc).isoformat(),
        "text": "南湖花园二区的路灯因为海葵台风受损，希望能够帮忙解决一下。",
        "address": "樟城镇南门社区南湖花园二区",
        "external_ref": f"HL-{uuid.uuid4().hex[:10]}",
    }
    body.update(overrides)
    return body
