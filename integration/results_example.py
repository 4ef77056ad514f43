"""Read the results of your requests from Wangge (回单): every status change of every
request your system sent, from your own queue ``wangge.outbound.<source>``.

    export AMQP_URI=amqp://integrator-hotline12345:…@broker:5672/   # your account; off the command line
    python integration/results_example.py --source hotline12345

Needs only kombu (``pip install kombu==5.7.0``). The contract, in short: Wangge
publishes to the durable topic exchange ``wangge.outbound`` with routing key
``request.<source>.<status>`` (``assigned``, ``acknowledged``, ``in_progress``,
``escalated``, ``returned``, ``resolved``, ``closed``, ``reopened``, ``merged``,
``rejected`` …), a UTF-8 JSON body as in ``outbound-result.schema.json`` (your
``external_ref``, the ``tracking_no``, ``status``, ``at``, the ``note``, and on
``resolved``/``closed`` the handling ``result`` and the resident's ``satisfaction``),
persistent, and an AMQP ``message_id`` that is the same when a result comes twice:
results come at least once, so drop a ``message_id`` you have handled. Results of one
request come in the order its case changed (``case_version`` grows). Acknowledge a
message once you have stored it; one you do not acknowledge comes again.
"""
import argparse
import os
import socket

from kombu import Connection, Consumer, Queue


def handle(result, handled):
    """Your system's side: update the work order ``result["external_ref"]``."""
    if result["message_id"] in handled:
        return
    handled.add(result["message_id"])
    extra = f" result={result['result']!r}" if result.get("result") else ""
    print(f"{result['external_ref']} ({result['tracking_no']}): {result['status']} at {result['at']}{extra}", flush=True)


def main():
    parser = argparse.ArgumentParser(description="Read your requests' results from Wangge's outbound queue.")
    # the account's password belongs in the environment, not on a command line others can list
    parser.add_argument("--amqp-uri", default=os.environ.get("AMQP_URI", "amqp://guest:guest@127.0.0.1:5672/"),
                        help="default: $AMQP_URI, else the local broker's guest account")
    parser.add_argument("--source", default="hotline12345")
    parser.add_argument("--seconds", type=float, default=10, help="stop after this long without a result")
    args = parser.parse_args()

    handled = set()  # keep this in your store, next to the work orders
    # no_declare: the queue exists, and your account may only read it
    queue = Queue(f"wangge.outbound.{args.source}", no_declare=True)

    def on_result(result, message):
        handle(result, handled)
        message.ack()  # once stored: a result not acknowledged comes again

    with Connection(args.amqp_uri) as connection, Consumer(connection, queues=[queue], callbacks=[on_result], accept=["json"]):
        while True:
            try:
                connection.drain_events(timeout=args.seconds)
            except socket.timeout:
                return


if __name__ == "__main__":
    main()
