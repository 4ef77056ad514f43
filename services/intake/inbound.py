"""The entrypoint for the ``wangge.inbound`` exchange (other government systems)."""
import json

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


class InboundConsumer(ReliableConsumer):
    """Hands the service ``{"message_id", "routing_key", "payload"}``; a message
    without ``message_id`` or with a body that is not a JSON object is dead-lettered
    to ``wangge.inbound.dead`` with the reason, and the queue keeps flowing."""

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
        return {"message_id": str(message_id), "routing_key": message.delivery_info.get("routing_key"), "payload": payload}


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


inbound = InboundConsumer.decorator
