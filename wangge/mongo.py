"""The store dependency: one MongoClient per service container, indexes ensured at start."""
from nameko.extensions import DependencyProvider
from pymongo import MongoClient
from pymongo.errors import BulkWriteError, DuplicateKeyError

DEFAULT_SERVER_SELECTION_MS = 5000


def connect(uri, **options):
    # tz_aware: every datetime read back is UTC-aware, like the ones we write.
    return MongoClient(uri, tz_aware=True, serverSelectionTimeoutMS=DEFAULT_SERVER_SELECTION_MS, **options)


class Storage(DependencyProvider):
    """Injects the service's storage object, built on the database named by
    ``MONGO_DATABASE`` at ``MONGO_URI``. The storage class is the only code that
    touches the service's collections; it must offer ``ensure_indexes(config)``."""

    def __init__(self, storage_cls):
        self.storage_cls = storage_cls
        self.client = None
        self.storage = None

    def setup(self):
        config = self.container.config
        self.client = connect(config["MONGO_URI"])
        self.storage = self.storage_cls(self.client[config["MONGO_DATABASE"]])
        self.storage.ensure_indexes(config)

    def get_dependency(self, worker_ctx):
        return self.storage

    def stop(self):
        self._close()

    def kill(self):
        # container.kill() skips stop()
        self._close()

    def _close(self):
        if self.client is not None:
            self.client.close()
            self.client = None


def insert_new(collection, documents):
    """Insert, in one round trip, the documents whose ids are not there yet; how many were new."""
    if not documents:
        return 0
    try:
        return len(collection.insert_many(documents, ordered=False).inserted_ids)
    except BulkWriteError as error:
        if any(e.get("code") != 11000 for e in error.details.get("writeErrors", [])):
            raise
        return error.details["nInserted"]


def insert_keyed(collection, document):
    """Insert a document that may carry an idempotency key (a unique sparse index on
    ``idempotency_key``); ``None`` if that key is taken."""
    try:
        collection.insert_one(document)
    except DuplicateKeyError as error:
        if "idempotency_key" in (error.details or {}).get("keyPattern", {}):
            return None
        raise
    return document
