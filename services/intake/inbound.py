"""The entrypoint for the ``wangge.inbound`` exchange (other government systems)."""
import json

from marshmallow import ValidationError
from werkzeug.http import parse_options_header

from wangge import topology
from wangge.logs import short_error
from wangge.reliable import PoisonMessage, ReliableConsumer

JSON_MEDIA_TYPES = ("application/json", "")
UTF8_NAMES = ("utf-8", "utf8")
# content_encoding says how the body is encoded: plain bytes (kombu says "binary"
# for a bytes body), UTF-8 or unsaid; a compressed or otherwise encoded body is
# refused rather than guessed at.
PLAIN_CONTENT_ENCODINGS = ("", "utf-8", "utf8", "identity", "binary")
# The same limit as the HTTP API: a resident's request is a few kilobytes.
MAX_BODY_BYTES = 1024 * 1024
# Retries and replays come back through the default exchange under the queue's
# name: the routing key the system published under travels with them in this header.
PUBLISHED_UNDER_HEADER = "x-wangge-published-under"


class InboundConsumer(ReliableConsumer):
    """Hands the service ``{"message_id", "routing_key", "payload"}`` (the routing key
    the system published under); a message without ``message_id`` or with a body
    that is not a JSON object is dead-lettered to ``wangge.inbound.dead`` with the
    reason, and the queue keeps flowing."""

    dead_letter_queue_name = topology.INBOUND_DEAD_LETTER_QUEUE

    def __init__(self, **kwargs):
        super().__init__(queue=topology.inbound_queue(), **kwargs)

    def decode(self, message):
        message_id = message.properties.get("message_id")
        if not message_id:
            raise PoisonMessage("missing AMQP message_id: it is the idempotency key and is required")
        check_content_properties(message.content_type, message.content_encoding)
        body = message.body
        if len(body) > MAX_BODY_BYTES:
            raise PoisonMessage(f"body is {len(body)} bytes: at most {MAX_BODY_BYTES} are accepted")
        try:
            payload = json.loads(body)
        except RecursionError as exc:
            raise PoisonMessage("body is nested too deeply") from exc
        except Exception as exc:
            raise PoisonMessage(f"body is not UTF-8 JSON: {short_error(exc)}") from exc
        if not isinstance(payload, dict):
            raise PoisonMessage("body must be a JSON object")
        return {"message_id": str(message_id), "routing_key": published_routing_key(message), "payload": payload}

    def _move(self, message, routing_key, headers, **options):
        super()._move(message, routing_key, {PUBLISHED_UNDER_HEADER: published_routing_key(message), **headers}, **options)


def published_routing_key(message):
    """The key a system published the message under: its delivery's, straight from
    ``wangge.inbound``; on a retry or a replay, the one recorded when intake first
    moved it. A system cannot fake the header: it is read only on messages that did
    not come from the exchange, and integrators may publish to nothing else."""
    if message.delivery_info.get("exchange") == topology.INBOUND_EXCHANGE_NAME:
        return message.delivery_info.get("routing_key")
    return (message.headers or {}).get(PUBLISHED_UNDER_HEADER)


def check_content_properties(content_type, content_encoding):
    """``application/json`` (optionally ``; charset=utf-8``), plain UTF-8, or a ``PoisonMessage`` saying why not."""
    media_type, options = parse_options_header(content_type or "")
    if media_type.lower() not in JSON_MEDIA_TYPES:
        raise PoisonMessage(f"content_type is {content_type!r}: must be application/json")
    charset = options.get("charset")
    if charset is not None and charset.lower() not in UTF8_NAMES:
        raise PoisonMessage(f"content_type charset is {charset!r}: the body must be UTF-8")
    if (content_encoding or "").lower() not in PLAIN_CONTENT_ENCODINGS:
        raise PoisonMessage(f"content_encoding is {content_encoding!r}: compressed or encoded bodies are refused, send plain UTF-8 JSON")


def sending_source(routing_key, named_source):
    """The system that sent a message: the ``<source>`` of its routing key
    ``request.<source>``, which the broker lets only that system's user publish
    under. A body naming another source is refused (``ValidationError`` on ``source``)."""
    prefix, _, source = (routing_key or "").partition(".")
    if prefix != "request" or source != named_source:
        raise ValidationError({"source": [f"Must be the source of the routing key request.<source> ({routing_key!r})."]})
    return source


inbound = InboundConsumer.decorator
