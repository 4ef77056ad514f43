"""A throwaway RabbitMQ vhost per test session, made through the management API,
so tests never meet a locally running platform's queues."""
import os
import time
import uuid
from contextlib import contextmanager
from urllib.parse import quote, urlsplit, urlunsplit

import requests
from kombu import Connection, Queue

DEFAULT_AMQP_URI = "amqp://guest:guest@127.0.0.1:5672/"
DEFAULT_MANAGEMENT_URL = "http://127.0.0.1:15672"


def _credentials(amqp_uri):
    parts = urlsplit(amqp_uri)
    return parts.username or "guest", parts.password or "guest"


def with_vhost(amqp_uri, vhost):
    parts = urlsplit(amqp_uri)
    return urlunsplit((parts.scheme, parts.netloc, "/" + quote(vhost, safe=""), "", ""))


@contextmanager
def throwaway_vhost():
    base_uri = os.environ.get("WANGGE_TEST_AMQP_URI", DEFAULT_AMQP_URI)
    management = os.environ.get("WANGGE_TEST_RABBIT_MANAGEMENT", DEFAULT_MANAGEMENT_URL)
    auth = _credentials(base_uri)
    vhost = f"wangge_test_{uuid.uuid4().hex[:12]}"
    api = f"{management}/api"
    try:
        requests.put(f"{api}/vhosts/{vhost}", auth=auth, timeout=10).raise_for_status()
    except requests.RequestException as exc:
        raise RuntimeError(
            f"cannot create a test vhost through RabbitMQ's management API at {management} ({exc}); "
            "enable it with `rabbitmq-plugins enable rabbitmq_management`"
        ) from exc
    requests.put(
        f"{api}/permissions/{vhost}/{auth[0]}", auth=auth, timeout=10,
        json={"configure": ".*", "write": ".*", "read": ".*"},
    ).raise_for_status()
    try:
        yield with_vhost(base_uri, vhost)
    finally:
        requests.delete(f"{api}/vhosts/{vhost}", auth=auth, timeout=30)


def drain(amqp_uri, queue_name, timeout=10.0, expected=None):
    """Take (and acknowledge) what arrives in ``queue_name`` within ``timeout``;
    stops early once ``expected`` messages are in hand."""
    taken = []
    deadline = time.monotonic() + timeout
    with Connection(amqp_uri) as connection:
        channel = connection.channel()
        queue = Queue(queue_name, durable=True)(channel)
        while time.monotonic() < deadline and (expected is None or len(taken) < expected):
            message = queue.get(no_ack=False)
            if message is None:
                time.sleep(0.05)
                continue
            message.ack()
            taken.append(message)
        channel.close()
    return taken


@contextmanager
def watch_queue(amqp_uri, exchange, routing_key):
    """A queue bound like a consumer's, for a test to read what is published;
    deleted afterwards so it never keeps a later publish routable."""
    name = f"test.watch.{uuid.uuid4().hex[:8]}"
    with Connection(amqp_uri) as connection:
        queue = Queue(name, exchange=exchange, routing_key=routing_key, durable=True)(connection.default_channel)
        queue.declare()
        try:
            yield name
        finally:
            queue.delete()


def queue_types(amqp_uri):
    """{queue name: its type (classic, quorum)} in the vhost of ``amqp_uri``, from the management API."""
    management = os.environ.get("WANGGE_TEST_RABBIT_MANAGEMENT", DEFAULT_MANAGEMENT_URL)
    vhost = quote(urlsplit(amqp_uri).path.lstrip("/") or "/", safe="")
    response = requests.get(f"{management}/api/queues/{vhost}", auth=_credentials(amqp_uri), timeout=10,
                            params={"columns": "name,type"})
    response.raise_for_status()
    return {queue["name"]: queue["type"] for queue in response.json()}
