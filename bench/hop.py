"""A bare kombu consumer for the baselines: take a message from one queue, do its
store work, publish it on to the next queue (if any), ack. No nameko, no eventlet.

    python -m bench.hop AMQP_URI MONGO_URI DATABASE IN_QUEUE OUT_QUEUE|- WORK CONSUMERS [PROGRESS_FILE]

Up to CONSUMERS messages are handled at once, each by a thread of its own, as the service
the hop stands in for handles as many at once as its ``max_workers``: bare code
doing the same work may overlap its waits for the store and the broker as much as
the pipeline does.

WORK is a number of inserts per message (baselines a and b), or a JSON file of the
store operations one of the pipeline's hops made per request (baseline c): per
collection and kind, commands and documents per request, done here in the same
collections (same indexes, documents the size of the pipeline's) by plain pymongo.
The last hop counts what it finished in PROGRESS_FILE, one byte each, so that
finding out when a run ends puts no load on the store.
"""
import json
import os
import sys
import threading
import uuid
from collections import deque

from bson import json_util
from kombu import Connection, Queue
from pymongo import MongoClient

QUORUM = {"x-queue-type": "quorum"}
SEED_BATCH = 1000  # documents an insert when a collection is filled before a run


def hop_queue(name):
    """The hops' queues are quorum queues, as every queue the pipeline's consumers read."""
    return Queue(name, durable=True, queue_arguments=QUORUM)


def inserts(database, in_queue, out_queue, count):
    store = database["hop_" + in_queue.replace(".", "_")]
    # the last hop's last write marks the message done, in a collection of its own
    done = database["done"] if out_queue == "-" else store

    def work(body):
        for n in range(count):
            (done if n == count - 1 else store).insert_one({"message": body["n"], "write": n})
    return work


class SameOperations:
    """The store work of one of the pipeline's hops, per message: each operation's
    commands come as often as in the pipeline (fractions add up from message to
    message), each touching as many documents as the pipeline's did. Shared by a hop's
    consumers: what is owed and which documents to touch are taken under a lock, the
    store's commands are made outside it."""

    def __init__(self, database, plan):
        self.database = database
        self.lock = threading.Lock()
        self.operations = plan["operations"]
        self.shapes = {name: json_util.loads(json.dumps(shape)) for name, shape in plan["collections"].items()}
        self.owed = [0.0] * len(self.operations)
        self.owed_documents = [0.0] * len(self.operations)
        # ids a later update or delete can take, oldest first (a deque: taking a few of
        # thousands costs the same however many there are)
        self.targets = {name: deque() for name in self.shapes}

    def prepare(self, seeded):
        """The collections with the pipeline's indexes, and documents to update or delete:
        ``seeded`` in each, or as many as the pipeline's collection held (its ``documents``)."""
        for name, shape in self.shapes.items():
            collection = self.database[name]
            for index in shape["indexes"]:
                collection.create_index(index["key"], **index["options"])
            wanted = max(seeded, shape.get("documents", 0))
            for start in range(0, wanted, SEED_BATCH):
                documents = [self.document(name) for _ in range(min(SEED_BATCH, wanted - start))]
                collection.insert_many(documents, ordered=False)
                self.targets[name].extend(document["_id"] for document in documents)

    def document(self, name):
        """A document like the pipeline's, with a new id and new values where an index is unique."""
        shape = self.shapes[name]
        document = {**shape["sample"], "_id": uuid.uuid4().hex}
        for path in shape["unique"]:
            *parents, field = path.split(".")
            node = document
            for parent in parents:
                node[parent] = node = dict(node.get(parent) or {})
            node[field] = uuid.uuid4().hex
        return document

    def __call__(self, body):
        for operation, docs in self.due():
            self.run(operation, docs)

    def due(self):
        """This message's commands: (operation, documents) each."""
        commands = []
        with self.lock:
            for n, operation in enumerate(self.operations):
                self.owed[n] += operation["commands"]
                while self.owed[n] >= 1:
                    self.owed[n] -= 1
                    # documents a command come as a mean (1.5: one, then two, ...)
                    self.owed_documents[n] += operation["docs_per_command"]
                    docs = max(1, int(self.owed_documents[n]))
                    self.owed_documents[n] -= docs
                    commands.append((operation, docs))
        return commands

    def run(self, operation, docs):
        name = operation["collection"]
        collection = self.database[name]
        if operation["kind"] == "insert":
            documents = [self.document(name) for _ in range(docs)]
            collection.insert_many(documents, ordered=False)
            with self.lock:
                self.targets[name].extend(document["_id"] for document in documents)
            return
        with self.lock:
            # the oldest ids, moved to the back (updated again later) or let go (deleted)
            targets = self.targets[name]
            taken = [targets.popleft() for _ in range(min(docs, len(targets)))]
            if operation["kind"] == "update":
                targets.extend(taken)
        # one document as the services write one (update_one: the store takes another path for it than for a multi-update)
        if docs == 1:
            where, update, delete = {"_id": taken[0]}, collection.update_one, collection.delete_one
        else:
            where, update, delete = {"_id": {"$in": taken}}, collection.update_many, collection.delete_many
        if operation["kind"] == "update":
            update(where, {"$set": {"hop_touched": uuid.uuid4().hex}})
        else:
            delete(where)


def relay(amqp_uri, in_queue, out_queue, handle_store, consumers=1, done=lambda: None, keep_going=lambda: True):
    """Take each message from ``in_queue``, do its store work, publish it on to ``out_queue``
    ("-": none) and ack it; ``done()`` after each. ``consumers`` threads do so at once,
    each taking one message at a time over connections of its own (kombu connections
    are not shared between threads)."""
    ready = threading.Barrier(consumers + 1)
    threads = [threading.Thread(target=consume, args=(amqp_uri, in_queue, out_queue, handle_store, done, keep_going, ready), daemon=True)
               for _ in range(consumers)]
    for thread in threads:
        thread.start()
    ready.wait()
    print("ready", flush=True)
    for thread in threads:
        thread.join()


def consume(amqp_uri, in_queue, out_queue, handle_store, done, keep_going, ready):
    """One consumer of a hop: one message at a time. It publishes over a connection of its
    own: waiting for a confirm on the consuming connection would take the next deliveries
    inside that wait, one handler within another, and an ack the broker sends for several
    publishes at once could then answer an inner wait and leave the outer one waiting
    for ever."""
    try:
        with Connection(amqp_uri) as consuming, Connection(amqp_uri, transport_options={"confirm_publish": True}) as publishing:
            producer = publishing.Producer()

            def handle(body, message):
                handle_store(body)
                if out_queue != "-":
                    producer.publish(body, routing_key=out_queue, serializer="json", delivery_mode=2)
                message.ack()
                done()

            with consuming.Consumer(hop_queue(in_queue), callbacks=[handle], prefetch_count=1):
                ready.wait()
                while keep_going():
                    try:
                        consuming.drain_events(timeout=1)
                    except TimeoutError:
                        pass
    except BaseException:
        ready.abort()  # a hop still setting up fails with it (BrokenBarrierError) rather than waiting for ever
        raise


def exit_on_a_threads_failure(failure):
    """Any thread that fails (a consumer, or one of pymongo's) ends the hop, so the run
    that needs it fails at once rather than waiting on what is left."""
    threading.__excepthook__(failure)
    os._exit(1)


def main():
    threading.excepthook = exit_on_a_threads_failure
    amqp_uri, mongo_uri, database, in_queue, out_queue, work, consumers = sys.argv[1:8]
    progress = sys.argv[8] if len(sys.argv) > 8 else None
    database = MongoClient(mongo_uri)[database]
    if work.isdigit():
        handle_store = inserts(database, in_queue, out_queue, int(work))
    else:
        with open(work, encoding="utf-8") as plan_file:
            plan = json.load(plan_file)
        handle_store = SameOperations(database, plan)
        handle_store.prepare(plan["seeded"])
    # appended ("ab"): each thread's byte lands at the end, none lost
    finished = open(progress, "ab", buffering=0) if progress else None
    relay(amqp_uri, in_queue, out_queue, handle_store, int(consumers),
          done=(lambda: os.write(finished.fileno(), b".")) if finished else (lambda: None))


if __name__ == "__main__":
    main()
