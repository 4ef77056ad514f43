"""Publish messages whose properties no well-behaved client would write, byte by
byte, the way a broken or hostile sender can."""
from struct import pack

import amqp

# Flag bits of AMQP 0-9-1 basic properties (the order they go on the wire).
CONTENT_TYPE, CONTENT_ENCODING, HEADERS, DELIVERY_MODE, MESSAGE_ID = 0x8000, 0x4000, 0x2000, 0x1000, 0x0080


def shortstr(raw):
    return pack(">B", len(raw)) + raw


def table(entries):
    """``entries``: (key bytes, type letter, already packed value) each."""
    content = b"".join(shortstr(key) + kind + value for key, kind, value in entries)
    return pack(">I", len(content)) + content


def basic_properties(*, content_type=None, content_encoding=None, headers=None, message_id=None):
    """Raw basic properties: every value is given as the bytes to send."""
    flags, fields = 0, b""
    if content_type is not None:
        flags |= CONTENT_TYPE
        fields += shortstr(content_type)
    if content_encoding is not None:
        flags |= CONTENT_ENCODING
        fields += shortstr(content_encoding)
    if headers is not None:
        flags |= HEADERS
        fields += headers
    flags |= DELIVERY_MODE
    fields += pack(">B", 2)  # persistent
    if message_id is not None:
        flags |= MESSAGE_ID
        fields += shortstr(message_id)
    return pack(">H", flags) + fields


class RawPropertiesMessage(amqp.Message):
    """py-amqp writes ``_serialize_properties()`` into the content header as is."""

    def __init__(self, body, raw_properties):
        super().__init__(body)
        self.raw_properties = raw_properties

    def _serialize_properties(self):
        return self.raw_properties


def publish_raw(channel, exchange, routing_key, body, raw_properties):
    channel.basic_publish(RawPropertiesMessage(body, raw_properties), exchange=exchange, routing_key=routing_key)
