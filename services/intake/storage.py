"""The only code that touches intake's collections.

``requests``       every accepted request, its announcement state and status history
``sentiment_log``  民情日志: one entry per contact or change, per grid when known
``open311_keys``   each system's Open311 API key, as its SHA-256 digest, by source
"""
import itertools

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.errors import DuplicateKeyError

from wangge.mongo import GroupCommit, inserted

PENDING = "pending"
ANNOUNCED = "announced"


class TrackingNumberTaken(Exception):
    """Another request drew the same tracking number: draw again."""


class RequestStore:
    def __init__(self, database):
        self.requests = database["requests"]
        self.sentiment_log = database["sentiment_log"]
        self.open311_keys = database["open311_keys"]
        self._log_sentiment = GroupCommit(self._log_entries)
        self._mark_announced = GroupCommit(self._mark_batch)

    def ensure_indexes(self, config=None):
        self.requests.create_indexes([
            IndexModel([("tracking_no", ASCENDING)], unique=True, name="tracking_no"),
            # every request has a key (its own id when the sender gave none): a plain
            # unique index, which every store answers from the index
            IndexModel([("idempotency_key", ASCENDING)], unique=True, name="idempotency_key_all"),
            IndexModel([("source", ASCENDING), ("external_ref", ASCENDING)], name="source_external_ref"),
            IndexModel([("announce.state", ASCENDING), ("announce.next_attempt_at", ASCENDING)], name="announce_due"),
            # Open311's listing: a system's requests by the time they came in
            IndexModel([("source", ASCENDING), ("received_at", DESCENDING)], name="source_received_at"),
        ])
        self.open311_keys.create_indexes([IndexModel([("key_digest", ASCENDING)], unique=True, name="key_digest")])
        self.sentiment_log.create_indexes([
            IndexModel([("grid_id", ASCENDING), ("at", DESCENDING)], name="grid_at"),
            IndexModel([("request_id", ASCENDING)], name="request_id"),
        ])

    def ping(self):
        self.requests.database.client.admin.command("ping")

    # -- requests ----------------------------------------------------------

    def find_by_idempotency_key(self, key):
        return self.requests.find_one({"idempotency_key": key})

    def insert_request(self, document):
        """Store a new request; ``None`` if one with the same idempotency key
        won the race, else the stored document. :class:`TrackingNumberTaken`
        if its tracking number is another request's."""
        try:
            self.requests.insert_one(document)
        except DuplicateKeyError as error:
            if "idempotency_key" in str(error):
                return None
            if "tracking_no" in str(error):
                raise TrackingNumberTaken(document["tracking_no"]) from error
            raise
        return document

    def find_by_tracking_no(self, tracking_no):
        return self.requests.find_one({"tracking_no": tracking_no})

    def find_by_external_ref(self, source, external_ref, limit=50):
        cursor = self.requests.find({"source": source, "external_ref": external_ref})
        return list(cursor.sort("received_at", ASCENDING).limit(limit))

    # -- announcing request_received --------------------------------------

    def claim_due_announcements(self, now, claim_for, limit=100):
        """Pending announcements due now, each claimed by a conditional update so
        two replicas never announce the same request in the same round."""
        due = self.requests.find(
            {"announce.state": PENDING, "announce.next_attempt_at": {"$lte": now}},
        ).sort("announce.next_attempt_at", ASCENDING).limit(limit)
        claimed = []
        for document in due:
            taken = self.requests.update_one(
                {"_id": document["_id"], "announce.state": PENDING,
                 "announce.next_attempt_at": document["announce"]["next_attempt_at"]},
                {"$set": {"announce.next_attempt_at": now + claim_for}, "$inc": {"announce.attempts": 1}},
            )
            if taken.modified_count == 1:
                claimed.append(document)
        return claimed

    def mark_announced(self, request_id, at):
        """Concurrent handlers' marks share one update."""
        self._mark_announced((request_id, at))

    def _mark_batch(self, marks):
        self.requests.update_many(
            {"_id": {"$in": [request_id for request_id, _ in marks]}, "announce.state": PENDING},
            {"$set": {"announce.state": ANNOUNCED, "announce.announced_at": max(at for _, at in marks)}},
        )
        return [None] * len(marks)

    def count_pending_announcements(self):
        return self.requests.count_documents({"announce.state": PENDING})

    # -- status from routing's case events --------------------------------

    def record_case_change(self, tracking_no, entry, case_fields, latest=None):
        """Record one versioned change of a case in its request without reading the request
        first: ``(recorded, placed)``. ``recorded`` is ``False`` only if there is no such
        request; ``placed`` says the request was in another grid (or none) until this change,
        so its earlier sentiment entries now belong to ``case_fields["grid_id"]`` (also said of a
        change recorded before, whose placing may not have happened).
        Idempotent per event id. The newest change of the case (by ``case_version``) sets
        the status, the case's fields and the ``latest`` fields (null included); an older
        one arriving late only joins the history. Each filter is one atomic write: changes
        recorded at once by other handlers cannot be lost between a read and a write."""
        unseen = {"tracking_no": tracking_no, "history.event_id": {"$ne": entry["event_id"]}}
        # none recorded yet, or an older one: not an $or, which some stores answer by reading every request
        newer = {"case_version": {"$not": {"$gte": entry["case_version"]}}}
        # received (no case version) first, then the case's changes in their order
        joined = {"$push": {"history": {"$each": [entry], "$sort": {"case_version": ASCENDING, "at": ASCENDING}}}}
        current = {**joined, "$set": {**{key: value for key, value in case_fields.items() if value is not None},
                                       **(latest or {}), "status": entry["status"], "status_at": entry["at"],
                                       "case_version": entry["case_version"]}}
        grid_id = case_fields.get("grid_id")
        # most changes are of a request whose grid routing found before: one write
        if grid_id and self.requests.update_one({**unseen, **newer, "grid_id": grid_id}, current).matched_count:
            return True, False
        if self.requests.update_one({**unseen, **newer}, current).matched_count:
            return True, bool(grid_id)
        if self.requests.update_one(unseen, joined).matched_count:
            return True, False
        # recorded before: a redelivery, perhaps of a change whose entries were not placed yet
        # (placing them again changes nothing); or no such request
        known = self.requests.count_documents({"tracking_no": tracking_no}, limit=1) == 1
        return known, known and bool(grid_id)

    def request_status(self, tracking_no):
        """What a case change without a case version is applied against: the request's status,
        case version, grid and the event ids of its history; ``None`` if there is no such request."""
        return self.requests.find_one({"tracking_no": tracking_no}, {"status_at": 1, "case_version": 1, "grid_id": 1, "history.event_id": 1})

    def record_case_status(self, request, entry, case_fields, latest=None):
        """Record one status change without a case version (from routing before its events
        carried one) of ``request`` (as read by :meth:`request_status`) in one write; ``False``
        if another change was recorded since that read (read again). Idempotent per event
        id; the current status, and the ``latest`` fields (null included), follow routing's
        clock until a versioned change has been recorded."""
        history = request.get("history", [])
        if any(recorded.get("event_id") == entry["event_id"] for recorded in history):
            return True
        changes = {key: value for key, value in case_fields.items() if value is not None}
        if newer_than_recorded(request, entry):
            changes.update(status=entry["status"], status_at=entry["at"], **(latest or {}))
        update = {"$push": {"history": {"$each": [entry], "$sort": {"case_version": ASCENDING, "at": ASCENDING}}}}
        if changes:
            update["$set"] = changes
        # the history's length stands for "no change recorded since the read"
        return self.requests.update_one({"_id": request["_id"], "history": {"$size": len(history)}}, update).modified_count == 1

    # -- sentiment log (民情日志) -----------------------------------------

    def log_sentiment(self, entry):
        """Entries carry a deterministic ``_id``: a redelivered event logs once. Concurrent
        handlers' entries share one insert."""
        self._log_sentiment(entry)

    def _log_entries(self, entries):
        inserted(self.sentiment_log, entries)
        return [None] * len(entries)

    def place_sentiment_entries(self, request_id, grid_id):
        """Entries of a request logged before its grid was known now belong to it."""
        self.sentiment_log.update_many({"request_id": request_id, "grid_id": None}, {"$set": {"grid_id": grid_id}})

    def sentiment_entries(self, grid_id=None, since=None, limit=100):
        query = {}
        if grid_id is not None:
            query["grid_id"] = grid_id
        if since is not None:
            query["at"] = {"$gte": since}
        return list(self.sentiment_log.find(query).sort("at", DESCENDING).limit(limit))


    # -- Open311 (services/intake/open311.py) -----------------------------

    def find_by_tracking_nos(self, tracking_nos):
        """The requests of these numbers (a few: Open311 asks for at most 20), newest first; one
        indexed read each, since a match on several at once scans every request on some stores."""
        found = [self.requests.find_one({"tracking_no": tracking_no}) for tracking_no in tracking_nos]
        return sorted((request for request in found if request), key=lambda request: request["received_at"], reverse=True)

    def open311_requests(self, source, since, until, *, service_codes=None, statuses=None, limit=1000):
        """A system's requests received from ``since`` to ``until``, newest first. ``statuses`` is
        ``(operator, statuses)``; a service code is the routed subclass, or the code filed
        under while routing has not classified the request."""
        query = {"source": source, "received_at": {"$gte": since, "$lte": until}}
        if statuses is not None:
            operator, values = statuses
            query["status"] = {operator: values}
        # the system's own by time (an index); the codes checked here, as an $or is a scan on some stores
        found = self.requests.find(query).sort("received_at", DESCENDING)
        if not service_codes:
            return list(found.limit(limit))
        return list(itertools.islice((request for request in found if (request.get("subclass") or request.get("category")) in service_codes),
                                     limit))

    def source_of_open311_key(self, digest):
        found = self.open311_keys.find_one({"key_digest": digest}, {"_id": 1})
        return found["_id"] if found else None

    def set_open311_key(self, source, digest, now):
        """The system's key from now on; ``True`` if it replaced one."""
        result = self.open311_keys.update_one({"_id": source}, {"$set": {"key_digest": digest, "issued_at": now}}, upsert=True)
        return result.upserted_id is None

    def remove_open311_key(self, source):
        return self.open311_keys.delete_one({"_id": source}).deleted_count == 1

    def open311_key_holders(self):
        return list(self.open311_keys.find({}, {"key_digest": 0}).sort("_id", ASCENDING))


def newer_than_recorded(request, entry):
    """Whether a case change without a case version is later than the one the request's
    status shows: only routing's clock orders such changes, and only until a versioned
    change has been recorded (versioned ones are ordered by :meth:`RequestStore.record_case_change`,
    never by the clocks: the request's status_at comes from this host's, ``at`` from routing's)."""
    return request.get("case_version") is None and request["status_at"] <= entry["at"]
