"""Deliveries that py-amqp cannot decode must not kill the consumer that receives them.

py-amqp decodes a delivery's routing key and properties inside the connection's
frame loop. A ``message_id`` or ``content_type`` that is not UTF-8, a header
timestamp beyond the year 9999 or headers nested past the recursion limit raise
there, out of ``drain_events``: nameko's consumer thread dies with the message
unacknowledged, and its redelivery kills the next consumer too.

:func:`install` makes that decoding lenient instead: text that is not UTF-8 keeps
its bytes as surrogate escapes, and properties that cannot be read at all are
skipped and named under :data:`UNDECODABLE`. The message then reaches our consumer,
which finds both (:func:`unreadable_parts`) and dead-letters it with the reason.
Well-formed messages decode exactly as before.
"""
from struct import unpack_from

from amqp import serialization
from amqp.spec import Basic

UNDECODABLE = "x-wangge-undecodable"

# (flag bit, property, AMQP type) in wire order: the layout py-amqp's own
# decode_properties_basic follows.
_BASIC_PROPERTIES = (
    (0x8000, "content_type", "shortstr"),
    (0x4000, "content_encoding", "shortstr"),
    (0x2000, "application_headers", "table"),
    (0x1000, "delivery_mode", "octet"),
    (0x0800, "priority", "octet"),
    (0x0400, "correlation_id", "shortstr"),
    (0x0200, "reply_to", "shortstr"),
    (0x0100, "expiration", "shortstr"),
    (0x0080, "message_id", "shortstr"),
    (0x0040, "timestamp", "longlong"),
    (0x0020, "type", "shortstr"),
    (0x0010, "user_id", "shortstr"),
    (0x0008, "app_id", "shortstr"),
    (0x0004, "cluster_id", "shortstr"),
)

_strict_decode_properties = serialization.decode_properties_basic


def lenient_text(value):
    """What py-amqp's ``bytes_to_str`` does, minus the exception on bytes that are not UTF-8."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "surrogateescape")
    return value


def is_utf8_text(value):
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def decode_properties_leniently(buf, offset):
    try:
        return _strict_decode_properties(buf, offset)
    except Exception as exc:  # any failure here would kill the connection's frame loop
        return _salvage_properties(buf, offset, exc)


def _salvage_properties(buf, offset, first_error):
    properties, problems = {}, []
    flags, = unpack_from(">H", buf, offset)
    offset += 2
    for bit, name, kind in _BASIC_PROPERTIES:
        if not flags & bit:
            continue
        if kind == "shortstr":
            length, = unpack_from(">B", buf, offset)
            properties[name] = lenient_text(bytes(buf[offset + 1:offset + 1 + length]))
            offset += 1 + length
        elif kind == "octet":
            properties[name], = unpack_from(">B", buf, offset)
            offset += 1
        elif kind == "longlong":
            properties[name], = unpack_from(">Q", buf, offset)
            offset += 8
        else:
            length, = unpack_from(">I", buf, offset)
            try:
                (properties[name],), _ = serialization.loads("F", buf, offset)
            except Exception as exc:
                problems.append(f"{name}: {type(exc).__name__}: {str(exc)[:200]}")
            offset += 4 + length
    properties[UNDECODABLE] = "; ".join(problems) or f"{type(first_error).__name__}: {str(first_error)[:200]}"
    return properties, offset


def unreadable_parts(message):
    """What of a kombu message could not be read as sent: ``[]`` for a sound message."""
    parts = []
    properties = message.properties or {}
    if properties.get(UNDECODABLE):
        parts.append(properties[UNDECODABLE])
    for name, value in sorted(properties.items()):
        if isinstance(value, str) and not is_utf8_text(value):
            parts.append(f"{name} is not UTF-8")
    routing_key = (message.delivery_info or {}).get("routing_key")
    if isinstance(routing_key, str) and not is_utf8_text(routing_key):
        parts.append("routing key is not UTF-8")
    return parts


def install():
    """Make py-amqp's decoding of incoming frames lenient (idempotent)."""
    serialization.pstr_t = lenient_text
    serialization.PROPERTY_CLASSES[Basic.CLASS_ID] = decode_properties_leniently
