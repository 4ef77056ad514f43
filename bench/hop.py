"""A bare kombu consumer for the baselines: take a message from one queue, do N
store writes, publish it on to the next queue (if any), ack. No nameko.

    python -m bench.hop AMQP_URI MONGO_URI DATABASE IN_QUEUE OUT_QUEUE|- WRITES
"""
import sys

from kombu import Connection, Queue
from pymongo import MongoClient


def main():
    amqp_uri, mongo_uri, database, in_queue, out_queue, writes = sys.argv[1:7]
    writes = int(writes)
    database = MongoClient(mongo_uri)[database]
    store = database["hop_" + in_queue.replace(".", "_")]
    # the last hop's last write marks the message done, in a collection counted from metadata
    done = database["done"] if out_queue == "-" else store
    with Connection(amqp_uri, transport_options={"confirm_publish": True}) as connection:
        producer = connection.Producer()

        def handle(body, message):
            for n in range(writes):
                (done if n == writes - 1 else store).insert_one({"message": body["n"], "write": n})
            if out_queue != "-":
                producer.publish(body, routing_key=out_queue, serializer="json", delivery_mode=2)
            message.ack()

        with connection.Consumer(Queue(in_queue, durable=True), callbacks=[handle], prefetch_count=10):
            while True:
                connection.drain_events()


if __name__ == "__main__":
    main()
