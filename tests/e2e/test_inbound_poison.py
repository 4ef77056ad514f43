"""Whatever another system sends to ``wangge.inbound`` (any bytes, properties or
headers), intake keeps running as the same process, the message ends in
``wangge.inbound.dead`` with its reason, and the valid messages behind it are filed."""
import json
import uuid
from contextlib import contextmanager
from struct import pack
from urllib.parse import unquote, urlsplit

import amqp
import pytest
import requests
from kombu import Connection

from integration.publish_example import publish_request
from tests.e2e.conftest import inbound_body
from tests.support.polling import eventually
from tests.support.raw_amqp import basic_properties, publish_raw, table
from tests.support.services import running_service
from wangge import admin, topology

pytestmark = pytest.mark.e2e

JSON = b"application/json"
TIMESTAMP_MAX = pack(">Q", 2**64 - 1)


@pytest.fixture(scope="module")
def intake_alone(module_amqp_uri, mongo_uri, tmp_path_factory):
    """An intake of this module's own, so its dead-letter queue holds only what the tests send."""
    with running_service("intake", amqp_uri=module_amqp_uri, mongo_uri=mongo_uri,
                         log_dir=tmp_path_factory.mktemp("logs")) as service:
        yield service


@contextmanager
def raw_channel(amqp_uri):
    parts = urlsplit(amqp_uri)
    connection = amqp.Connection(
        host=f"{parts.hostname}:{parts.port or 5672}", userid=unquote(parts.username or "guest"),
        password=unquote(parts.password or "guest"), virtual_host=unquote(parts.path[1:]) or "/", confirm_publish=True,
    )
    connection.connect()
    try:
        yield connection.channel()
    finally:
        connection.close()


def message_id():
    return uuid.uuid4().hex.encode()


def dead_letters(amqp_uri):
    return list(admin.iter_dead_letters(amqp_uri, topology.INBOUND_DEAD_LETTER_QUEUE))


def filed(intake, body):
    response = intake.as_user(f"integrator-{body['source']}").get(
        intake.url("/api/v1/requests"), timeout=10, params={"source": body["source"], "external_ref": body["external_ref"]})
    return response.json()["items"]


def assert_same_process_and_healthy(intake, pid):
    assert not intake.process.exited(), intake.process.log_tail()
    assert intake.process.pid == pid
    assert requests.get(intake.url("/health"), timeout=5).status_code == 200


def test_fourteen_poison_messages_are_dead_lettered_and_five_valid_ones_behind_them_are_filed(intake_alone, module_amqp_uri):
    pid = intake_alone.process.pid
    poison = [
        # 100,000 nested arrays: RecursionError while parsing
        (b"[" * 100_000 + b"]" * 100_000, basic_properties(content_type=JSON, message_id=message_id()), "nested too deeply"),
        # properties py-amqp cannot decode
        (b"{}", basic_properties(content_type=b"\xff\xfe", message_id=message_id()), "content_type is not UTF-8"),
        (b"{}", basic_properties(content_type=JSON, message_id=b"\xff\xfe-id"), "message_id is not UTF-8"),
        (b"{}", basic_properties(content_type=JSON, message_id=message_id(),
                                 headers=table([(b"sent-at", b"T", TIMESTAMP_MAX)])), "application_headers"),
    ] + [
        (b"", basic_properties(content_type=JSON, message_id=message_id()), "not UTF-8 JSON")
        for _ in range(10)
    ]
    with raw_channel(module_amqp_uri) as channel:
        for body, properties, _ in poison:
            publish_raw(channel, topology.INBOUND_EXCHANGE_NAME, "request.hotline12345", body, properties)
    valid = [inbound_body() for _ in range(5)]
    with Connection(module_amqp_uri, transport_options={"confirm_publish": True}) as connection:
        for body in valid:
            publish_request(connection, body, message_id=uuid.uuid4().hex, source="hotline12345")

    for body in valid:
        assert eventually(lambda: filed(intake_alone, body), timeout=30)
    dead = eventually(lambda: (lambda found: found if len(found) >= len(poison) else None)(dead_letters(module_amqp_uri)), timeout=30)
    assert len(dead) == len(poison)
    reasons = sorted(entry["reason"] for entry in dead)
    for _, _, expected in poison:
        assert any(expected in reason for reason in reasons), (expected, reasons)
    assert_same_process_and_healthy(intake_alone, pid)


def test_content_type_charset_and_encoding_are_read_as_the_contract_says(intake_alone, module_amqp_uri):
    pid = intake_alone.process.pid
    before = len(dead_letters(module_amqp_uri))
    accepted = inbound_body()
    refused = [
        (inbound_body(), basic_properties(content_type=b"application/json; charset=gbk", message_id=message_id()), "charset"),
        (inbound_body(), basic_properties(content_type=JSON, content_encoding=b"gzip", message_id=message_id()), "content_encoding"),
        # headers nested past py-amqp's recursion limit
        (inbound_body(), basic_properties(content_type=JSON, message_id=message_id(),
                                          headers=table([(b"deep", b"A", nested_array(5_000))])), "application_headers"),
    ]
    with raw_channel(module_amqp_uri) as channel:
        publish_raw(channel, topology.INBOUND_EXCHANGE_NAME, "request.hotline12345",
                    json.dumps(accepted).encode(), basic_properties(content_type=b"application/json; charset=utf-8", message_id=message_id()))
        for body, properties, _ in refused:
            publish_raw(channel, topology.INBOUND_EXCHANGE_NAME, "request.hotline12345", json.dumps(body).encode(), properties)

    assert eventually(lambda: filed(intake_alone, accepted), timeout=30)
    dead = eventually(lambda: (lambda found: found if len(found) >= before + len(refused) else None)(dead_letters(module_amqp_uri)), timeout=30)
    reasons = [entry["reason"] for entry in dead[before:]]
    assert len(reasons) == len(refused)
    for body, _, expected in refused:
        assert any(expected in reason for reason in reasons), (expected, reasons)
        assert not filed(intake_alone, body)
    assert_same_process_and_healthy(intake_alone, pid)


def nested_array(depth):
    """An AMQP field array holding an array holding … ``depth`` deep."""
    value = pack(">I", 0)
    for _ in range(depth):
        value = pack(">I", len(value) + 1) + b"A" + value
    return value
