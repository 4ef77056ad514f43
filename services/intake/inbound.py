"""The entrypoint for the ``wangge.inbound`` exchange (other government systems)."""
import json

from wangge import topology
from wangge.reliable import PoisonMessage, ReliableConsumer

JSON_CONTENT_TYPES = ("application/json", None, "")


class InboundConsumer(ReliableConsumer):
    """Hands the service ``{"message_id", "routing_key", "payload"}``; a message
    without ``message_id`` or with a body that is not JSON is dead-lettered to
    ``wangge.inbound.dead`` with the reason, and the queue keeps flowing."""

    dead_letter_queue_name = topology.INBOUND_DEAD_LETTER_QUEUE

    def __init__(self, **kwargs):
        super().__init__(queue=topology.inbound_queue(), **kwargs)

    def decode(self, message):
        message_id = message.properties.get("message_id")
        if not message_id:
            raise PoisonMessage("missing AMQP message_id: it is the idempotency key and is required")
        if message.content_type not in JSON_CONTENT_TYPES:
            raise PoisonMessage(f"content_type is {message.content_type!r}: must be application/json")
        try:
            payload = json.loads(message.body)
        except (UnicodeDecodeError, ValueError) as exc:
            raise PoisonMessage(f"body is not UTF-8 JSON: {exc}") from exc
        if not isinstance(payload, dict):
            raise PoisonMessage("body must be a JSON object")
        return {"message_id": str(message_id), "routing_key": message.delivery_info.get("routing_key"), "payload": payload}


inbound = InboundConsumer.decorator
