"""Can a process reach the broker and the store? One clear line if not.

Importing this module patches nothing, so tools that do not run under eventlet
(``make run``) can use it too.
"""
import re

from kombu import Connection
from kombu.utils.url import maybe_sanitize_url

from wangge.mongo import connect

BROKER_HINT = "start it with `rabbitmq-server -detached` (Debian: apt-get install rabbitmq-server) or set AMQP_URI"
STORE_HINT = "start it with `make up` (SecantusDB) or set MONGO_URI to a MongoDB server"


def sanitize_mongo_uri(uri):
    return re.sub(r"//([^:/@]+):[^@/]+@", r"//\1:***@", uri)


def broker_problem(amqp_uri, timeout=5):
    try:
        with Connection(amqp_uri, connect_timeout=timeout) as connection:
            connection.ensure_connection(max_retries=1)
    except Exception as exc:
        return f"cannot reach RabbitMQ at {maybe_sanitize_url(amqp_uri)} ({exc}): {BROKER_HINT}"
    return None


def store_problem(mongo_uri):
    client = None
    try:
        client = connect(mongo_uri)
        client.admin.command("ping")
    except Exception as exc:
        reason = str(exc).split(",")[0]
        return f"cannot reach the store at {sanitize_mongo_uri(mongo_uri)} ({reason}): {STORE_HINT}"
    finally:
        if client is not None:
            client.close()
    return None
