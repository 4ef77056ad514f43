"""The store dependency: one MongoClient per service container, indexes ensured at start;
the shared ways of writing many documents in one command."""
from datetime import datetime, timezone

from eventlet.queue import LightQueue
from nameko.extensions import DependencyProvider
from pymongo import MongoClient
from pymongo.errors import BulkWriteError, DuplicateKeyError

DEFAULT_SERVER_SELECTION_MS = 5000
# Before every date the platform stores. A null (or missing) field sorts before every date in
# an index, and SecantusDB reads a range with no lower bound from the index's start: a read of
# what is due by a date most documents leave null (a case with nothing left to publish, a
# closed case's deadline check, a campaign with no round left) read and dropped every one of
# those documents (1.2 s at 20,000 cases, against 2.5 ms with the bound).
FIRST_DATE = datetime(1970, 1, 1, tzinfo=timezone.utc)


def connect(uri, **options):
    # tz_aware: every datetime read back is UTC-aware, like the ones we write.
    return MongoClient(uri, tz_aware=True, serverSelectionTimeoutMS=DEFAULT_SERVER_SELECTION_MS, **options)


class Storage(DependencyProvider):
    """Injects the service's storage object, built on the database named by
    ``MONGO_DATABASE`` at ``MONGO_URI``. The storage class is the only code that
    touches the service's collections; it must offer ``ensure_indexes(config)``."""

    def __init__(self, storage_cls, settings=None):
        self.storage_cls = storage_cls
        # what the storage class takes from the config besides its database, as keyword arguments
        self.settings = settings or (lambda config: {})
        self.client = None
        self.storage = None

    def setup(self):
        config = self.container.config
        self.client = connect(config["MONGO_URI"])
        self.storage = self.storage_cls(self.client[config["MONGO_DATABASE"]], **self.settings(config))
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
    return len(inserted(collection, documents))


def inserted(collection, documents):
    """Insert, in one round trip, the documents whose ids are not there yet; the ones that were new."""
    if not documents:
        return []
    try:
        collection.insert_many(documents, ordered=False)
    except BulkWriteError as error:
        errors = error.details.get("writeErrors", [])
        if any(e.get("code") != 11000 for e in errors):
            raise
        taken = {e["index"] for e in errors}
        return [document for index, document in enumerate(documents) if index not in taken]
    return list(documents)


def dated_until(moment, inclusive=True):
    """A filter on a date field: a date on or before ``moment`` (before it if not
    ``inclusive``), read from the index's first date rather than from its nulls."""
    return {"$gte": FIRST_DATE, ("$lte" if inclusive else "$lt"): moment}


class WriteCutOff(ConnectionError):
    """The caller that was writing this item in one command with its own was stopped
    mid-command: the item may or may not be stored (a write to try again, as after a
    lost connection)."""


class GroupCommit:
    """One store command for the writes (or reads) of many green threads: group commit.
    A caller hands its item and waits for its own result; a caller that finds no command
    under way sends every item queued so far, and hands the next round to whoever queued
    meanwhile. Alone, an item goes at once; under load, concurrent handlers share the
    round trip, and each still returns only once its item is stored.

    ``write(items)`` returns one result per item, in order."""

    def __init__(self, write):
        self.write = write
        self.queued = []
        self.writing = False
        self.led_by = None  # the queued caller handed the next round, until it takes it

    def __call__(self, item):
        answer = LightQueue()
        entry = (item, answer)
        self.queued.append(entry)
        if self.writing:
            try:
                outcome = answer.get()
            except BaseException:  # killed while waiting: the round goes on without it
                self._leave(entry)
                raise
            if outcome is not _LEAD:
                return _unwrap(outcome)
        self.led_by = None
        self.writing = True
        batch, self.queued = self.queued, []
        stopped = None
        try:
            results = [(True, result) for result in self.write([queued_item for queued_item, _ in batch])]
        except Exception as exc:
            results = [(False, exc)] * len(batch)
        except BaseException as exc:  # this caller killed mid-command: the others' write was cut off, they were not
            stopped = exc
            results = [(False, WriteCutOff(f"the command writing it was stopped ({type(exc).__name__})"))] * len(batch)
        finally:
            self._hand_on()  # nobody may wait for ever
        for (_, waiting), outcome in zip(batch, results):
            if waiting is not answer:
                waiting.put(outcome)
        if stopped is not None:
            raise stopped
        return _unwrap(results[[waiting for _, waiting in batch].index(answer)])

    def _hand_on(self):
        """The next round to the first caller queued, or none under way."""
        if self.queued:
            self.led_by = self.queued[0]
            self.led_by[1].put(_LEAD)
        else:
            self.led_by = None
            self.writing = False

    def _leave(self, entry):
        """A caller that will not wait any longer: out of the queue, and if the next round
        was handed to it, on to the next caller (else every later caller would wait for ever)."""
        for position, queued in enumerate(self.queued):
            if queued is entry:
                del self.queued[position]
                if self.led_by is entry:
                    self._hand_on()
                return


_LEAD = object()  # the signal that hands a waiting caller the next round


def _unwrap(outcome):
    ok, value = outcome
    if not ok:
        raise value
    return value


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
