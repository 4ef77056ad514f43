"""Publish a resident's request to Wangge's inbound exchange.

    export AMQP_URI=amqp://integrator-hotline12345:…@broker:5672/   # your account; off the command line
    python integration/publish_example.py --source hotline12345 --text "南湖花园二区的路灯坏了" --external-ref HL-2026-0001

Needs only kombu (``pip install kombu==5.7.0``). The contract, in short:
durable topic exchange ``wangge.inbound``, routing key ``request.<source>``,
UTF-8 JSON body as in ``inbound-request.schema.json``,
``content_type=application/json``, persistent delivery, and an AMQP
``message_id`` that stays the same when you resend the same request (Wangge
files it once; other systems' ids never clash with yours). The body's ``source``
must be the routing key's. Messages Wangge cannot accept are kept in
``wangge.inbound.dead`` with the reason; ask the operator for it. Read your
requests back with your integrator token:
``GET /api/v1/requests?source=<source>&external_ref=…``.
"""
import argparse
import json
import os
import uuid
from datetime import datetime, timezone

from kombu import Connection, Exchange, Producer

INBOUND_EXCHANGE = Exchange("wangge.inbound", type="topic", durable=True)


def publish_request(connection, body, *, message_id, source):
    """Publish one request and wait for the broker's confirmation."""
    # auto_declare off: the exchange exists, and an integrator's account may only publish to it
    # one channel for every publish on this connection (a channel per message would
    # soon reach the broker's channel limit)
    producer = Producer(connection.default_channel, exchange=INBOUND_EXCHANGE, auto_declare=False)
    producer.publish(
        json.dumps(body, ensure_ascii=False).encode("utf-8"),
        routing_key=f"request.{source}",
        content_type="application/json",
        content_encoding="utf-8",
        delivery_mode=2,  # persistent
        message_id=message_id,
        retry=True,
    )


def main():
    parser = argparse.ArgumentParser(description="Publish one request to Wangge's inbound exchange.")
    # the account's password belongs in the environment, not on a command line others can list
    parser.add_argument("--amqp-uri", default=os.environ.get("AMQP_URI", "amqp://guest:guest@127.0.0.1:5672/"),
                        help="default: $AMQP_URI, else the local broker's guest account")
    parser.add_argument("--source", default="hotline12345")
    parser.add_argument("--text", default="南湖花园二区的路灯因为海葵台风受损，希望能够帮忙解决一下。")
    parser.add_argument("--external-ref", default=None)
    parser.add_argument("--message-id", default=None, help="reuse it to resend the same request")
    args = parser.parse_args()

    body = {
        "source": args.source,
        "submitted_at": datetime.now(timezone.utc).isoformat(),
        "text": args.text,
        "address": "樟城镇南门社区南湖花园二区",
        "reporter": {"name": "张先生", "phone": "13800000000"},
    }
    if args.external_ref:
        body["external_ref"] = args.external_ref
    message_id = args.message_id or uuid.uuid4().hex
    # confirm_publish: publish() returns only once the broker has the message.
    with Connection(args.amqp_uri, transport_options={"confirm_publish": True}) as connection:
        publish_request(connection, body, message_id=message_id, source=args.source)
    print(f"published message_id={message_id} routing_key=request.{args.source}")


if __name__ == "__main__":
    main()
