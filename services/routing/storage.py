"""The only code that touches routing's collections.

``registry``     the current registry edition (one document)
``towns`` ``communities`` ``grids`` ``departments``
                 the registry's records; every edition is written beside the
                 old one and becomes current in one update, and the edition it
                 replaces stays until the next load, so a reader that took the
                 edition number just before a switch still finds all of it
``cases``        cases with their timeline, SLA clocks and an outbox of events
                 not yet confirmed by the broker
``follow_up_tokens``
                 which case a follow-up link's token (by its digest) answers; the
                 case itself keeps whether it is used and when it expires
``labelled_examples``
                 the class a dispatcher confirmed or corrected for a case's text
                 (masked), one per case, for extending the classifier's corpus
"""
import time
from datetime import timedelta

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.errors import BulkWriteError, DuplicateKeyError, OperationFailure

from wangge.errors import ApiError
from wangge.mongo import GroupCommit, dated_until

from services.routing.lifecycle import OPEN_STATUSES

REGISTRY_KINDS = ("towns", "communities", "grids", "departments")
# An expired link still answers "expired" (not "unknown") this long.
FOLLOW_UP_TOKENS_KEPT = timedelta(days=30)
UNIQUE_INDEX_ATTEMPTS = 5
# a request is in one case at most: a second delivery of it cannot open or join
# another, and needs no read to find that out
REQUEST_INDEX = IndexModel([("request_ids", ASCENDING)], unique=True, name="request_ids")


class StaleRegistry(ApiError):
    """A registry edition not newer than the one in force."""

    http_status = 409
    error_code = "stale_registry"


class RequestInAnotherCase(Exception):
    """A change would add a request to a case when another case has it already."""


class RoutingStore:
    def __init__(self, database):
        self.database = database
        self.registry = database["registry"]
        self.cases = database["cases"]
        self.follow_up_tokens = database["follow_up_tokens"]
        self.labelled_examples = database["labelled_examples"]
        self._count_open_cases = GroupCommit(self._open_cases_by_assignee_batch)

    def ensure_indexes(self, config=None):
        for kind in REGISTRY_KINDS:
            self.database[kind].create_index([("edition", ASCENDING), ("id", ASCENDING)], unique=True, name="edition_id")
        self.database["grids"].create_index(
            [("edition", ASCENDING), ("town_id", ASCENDING), ("community_id", ASCENDING)], name="edition_town",
        )
        if (config or {}).get("REGISTRY", {}).get("AREA_INDEX", True):
            # For operators' geo queries; routing itself answers points from memory.
            self.database["grids"].create_index([("area", "2dsphere")], name="area")
        self._make_request_index_unique()
        self.cases.create_indexes([
            REQUEST_INDEX,
            IndexModel([("status", ASCENDING), ("grid_id", ASCENDING)], name="status_grid"),
            IndexModel([("town_id", ASCENDING), ("status", ASCENDING)], name="town_status"),
            IndexModel([("assignee.id", ASCENDING), ("status", ASCENDING)], name="assignee_status"),
            IndexModel([("grid_id", ASCENDING), ("category", ASCENDING), ("opened_at", DESCENDING)], name="duplicates"),
            IndexModel([("sla_next_check_at", ASCENDING)], name="sla_due"),
            IndexModel([("outbox_pending_since", ASCENDING)], name="outbox_pending"),
            IndexModel([("opened_at", DESCENDING)], name="opened_at"),
            IndexModel([("awaiting_dispatch", ASCENDING), ("dispatch.since", ASCENDING)], name="dispatch_queue"),
            # the scorecard's reads of a period (cases_for_period)
            IndexModel([("updated_at", ASCENDING)], name="updated_at"),
            IndexModel([("sla.resolution.due_at", ASCENDING)], name="resolution_due"),
            IndexModel([("deferral.original_due_at", ASCENDING)], name="deferred_due", sparse=True),
        ])
        self.labelled_examples.create_index([("at", ASCENDING)], name="at")
        # looked up by _id (the digest): the cases collection needs no index more
        self.follow_up_tokens.create_index([("expires_at", ASCENDING)], name="forget",
                                           expireAfterSeconds=int(FOLLOW_UP_TOKENS_KEPT.total_seconds()))

    def _make_request_index_unique(self):
        """Stores made before the index was unique have a plain one of the same name:
        replace it. Routing processes starting together may each try; they retry until
        the unique one stands. A store where a request is in two cases (possible before)
        cannot have it: say which requests, rather than start without the guarantee."""
        for attempt in range(UNIQUE_INDEX_ATTEMPTS):
            existing = self.cases.index_information().get("request_ids")
            if existing is None or existing.get("unique"):
                return
            try:
                self.cases.drop_index("request_ids")
                self.cases.create_indexes([REQUEST_INDEX])
                return
            except DuplicateKeyError:
                self.cases.create_index([("request_ids", ASCENDING)], name="request_ids")  # the reads need it meanwhile
                raise RuntimeError("requests in more than one case, merge or remove them first: "
                                   + ", ".join(self._requests_in_several_cases())) from None
            except OperationFailure:
                if attempt + 1 == UNIQUE_INDEX_ATTEMPTS:
                    raise
                time.sleep(0.2 * (attempt + 1))  # another process is replacing it

    def _requests_in_several_cases(self, limit=20):
        pipeline = [{"$unwind": "$request_ids"}, {"$group": {"_id": "$request_ids", "cases": {"$sum": 1}}},
                    {"$match": {"cases": {"$gt": 1}}}, {"$limit": limit}]
        return [row["_id"] for row in self.cases.aggregate(pipeline)]

    def ping(self):
        self.database.client.admin.command("ping")

    # -- registry ------------------------------------------------------------

    def registry_edition(self):
        current = self.registry.find_one({"_id": "current"})
        return current and current["edition"]

    def registry_summary(self):
        return self.registry.find_one({"_id": "current"}, {"_id": 0})

    def replace_registry(self, edition, county, records, now):
        """Write a new edition beside the old one and switch to it. The edition it
        replaces is dropped only by the next load: processes and HTTP readers that
        read the edition number just before the switch are still reading it."""
        current = self.registry_edition()
        if current is not None and edition <= current:
            raise StaleRegistry(f"Version {edition} is not newer than the registry in force (version {current}).")
        for kind in REGISTRY_KINDS:
            collection = self.database[kind]
            collection.delete_many({"edition": edition})  # leftovers of an interrupted load
            documents = [{**record, "_id": f"{edition}:{record['id']}", "edition": edition} for record in records[kind]]
            if documents:
                try:
                    collection.insert_many(documents, ordered=False)
                except BulkWriteError as error:
                    raise StaleRegistry(f"Another load of version {edition} is under way; load again once it is done.") from error
        counts = {kind: len(records[kind]) for kind in REGISTRY_KINDS}
        switched = self.registry.update_one(
            {"_id": "current", "edition": current},
            {"$set": {"edition": edition, "county": county, "loaded_at": now, "counts": counts}},
            upsert=current is None,
        )
        if switched.matched_count == 0 and current is not None:
            raise StaleRegistry("Another load switched the registry meanwhile; load again.")
        kept = [edition] if current is None else [edition, current]
        for kind in REGISTRY_KINDS:
            self.database[kind].delete_many({"edition": {"$nin": kept}})
        return counts

    def registry_records(self, kind, edition, query=None, skip=0, limit=0, projection=None):
        cursor = self.database[kind].find({**(query or {}), "edition": edition}, projection).sort("id", ASCENDING)
        return list(cursor.skip(skip).limit(limit))

    def count_registry_records(self, kind, edition, query=None):
        return self.database[kind].count_documents({**(query or {}), "edition": edition})

    def registry_record(self, kind, edition, record_id):
        return self.database[kind].find_one({"_id": f"{edition}:{record_id}"})

    # -- cases ---------------------------------------------------------------

    def insert_case(self, case):
        """``False`` if a case with this id, or with one of its requests, exists
        already (a redelivered request)."""
        try:
            self.cases.insert_one(case)
        except DuplicateKeyError:
            return False
        return True

    def get_case(self, case_id):
        return self.cases.find_one({"_id": case_id})

    def case_for_request(self, request_id):
        return self.cases.find_one({"request_ids": request_id})

    def apply_change(self, case_id, version, changes, timeline=(), outbox=(), extra_pushes=None, guard=None, pending_since=None):
        """Apply a planned change only if the case is still at ``version``: of two
        concurrent changes exactly one wins. Returns whether this one did.
        ``pending_since``: when the oldest event still in the outbox as read was
        queued; the timer must find those before the ones this change adds."""
        pushes = dict(extra_pushes or {})
        if timeline:
            pushes["timeline"] = {"$each": list(timeline)}
        sets = {**changes, "version": version + 1}
        if outbox:
            pushes["outbox"] = {"$each": list(outbox)}
            sets["outbox_pending_since"] = pending_since or outbox[0]["queued_at"]
        update = {"$set": sets}
        if pushes:
            update["$push"] = pushes
        try:
            result = self.cases.update_one({"_id": case_id, "version": version, **(guard or {})}, update)
        except DuplicateKeyError as taken:
            # the only unique key a change can add is a request (a merge)
            raise RequestInAnotherCase(f"case {case_id}: a request it would take is in another case") from taken
        return result.modified_count == 1

    def clear_outbox(self, case_id, event_ids):
        """Drop published events, in one write by ``_id``: the outbox keeps what was not
        published (added meanwhile by another change, or not confirmed), and the timer
        finds the case again from when the oldest of those was queued, or no longer once
        none is left. (A filter beyond ``_id`` costs SecantusDB ~0.4 ms more a case; a
        second write for the rare outbox left half published, one more.)"""
        # $literal: ids are values, not expressions (an id starting with "$" would read as a field)
        published = {"$literal": list(event_ids)}
        not_published = {"$filter": {"input": {"$ifNull": ["$outbox", []]}, "cond": {"$not": [{"$in": ["$$this.event_id", published]}]}}}
        oldest_left = {"$let": {"vars": {"first": {"$arrayElemAt": ["$outbox", 0]}}, "in": "$$first.queued_at"}}
        self.cases.update_one({"_id": case_id}, [
            {"$set": {"outbox": not_published}},
            {"$set": {"outbox_pending_since": {"$cond": [{"$eq": [{"$size": "$outbox"}, 0]}, None, oldest_left]}}},
        ])

    def cases_with_stale_outbox(self, queued_before, limit=200):
        """Cases with events queued before ``queued_before`` and maybe not published.
        An indexed field, not the outbox array: a range over an array is a scan on some stores."""
        found = list(self.cases.find({"outbox_pending_since": dated_until(queued_before)}, {"outbox": 1}).limit(limit))
        for case in found:
            if not case["outbox"]:  # left so by earlier versions: a $pull that emptied an outbox kept its mark
                self.cases.update_one({"_id": case["_id"], "outbox": {"$size": 0}}, {"$set": {"outbox_pending_since": None}})
        return [case for case in found if case["outbox"]]

    def open_duplicate_candidates(self, grid_id, category, since, limit=50):
        query = {"grid_id": grid_id, "category": category, "status": {"$in": list(OPEN_STATUSES)}, "opened_at": {"$gte": since}}
        return list(self.cases.find(query, {"tokens": 1, "version": 1, "status": 1}).sort("opened_at", DESCENDING).limit(limit))

    def open_cases_by_assignee(self, assignee_ids):
        """The workers' open cases by id (a grid has two or three workers). The questions of
        concurrent handlers share one command, each read after it was asked: a count costs
        SecantusDB ~1.2 ms and ~0.1 ms more a worker, so four grids' in one command cost
        a third of four commands."""
        return self._count_open_cases(list(assignee_ids))

    def _open_cases_by_assignee_batch(self, questions):
        # At most max_workers questions of two or three workers each: an $in of tens of ids.
        # The match names the workers first: SecantusDB reads it from the assignee index
        # (~2 ms at 20,000 cases), but with the statuses first it reads every case (~420 ms).
        workers = sorted({worker for question in questions for worker in question})
        pipeline = [
            {"$match": {"assignee.id": {"$in": workers}, "status": {"$in": list(OPEN_STATUSES)}}},
            {"$group": {"_id": "$assignee.id", "open": {"$sum": 1}}},
        ]
        counts = {row["_id"]: row["open"] for row in self.cases.aggregate(pipeline)}
        return [{worker: counts[worker] for worker in question if worker in counts} for question in questions]

    def cases_due_for_sla(self, now, fields, limit=500):
        """Cases whose SLA check is due, oldest first, with ``fields`` only (a
        ``reporters`` among them brings the first reporter)."""
        projection = {name: 1 for name in fields}
        if "reporters" in projection:
            projection["reporters"] = {"$slice": 1}
        cursor = self.cases.find({"sla_next_check_at": dated_until(now)}, projection)
        return list(cursor.sort("sla_next_check_at", ASCENDING).limit(limit))

    def postpone_sla_check(self, case_id, version, until):
        """Check the case again at ``until``, unless a change since ``version``
        already set its next check."""
        self.cases.update_one({"_id": case_id, "version": version}, {"$set": {"sla_next_check_at": until}})

    def find_cases(self, query, skip=0, limit=50):
        cursor = self.cases.find(query, {"outbox": 0, "tokens": 0}).sort("opened_at", DESCENDING)
        return list(cursor.skip(skip).limit(limit)), self.cases.count_documents(query)

    def count_cases_by_grid(self, query):
        """``{grid_id: n}`` of the cases matching ``query``, one pass over them (the map's counts);
        cases in no grid are left out."""
        pipeline = [{"$match": query}, {"$group": {"_id": "$grid_id", "n": {"$sum": 1}}}]
        return {row["_id"]: row["n"] for row in self.cases.aggregate(pipeline) if row["_id"] is not None}

    def count_cases_by_town(self, query):
        """``{town_id: n}`` of the cases matching ``query``; cases in no town are left out."""
        pipeline = [{"$match": query}, {"$group": {"_id": "$town_id", "n": {"$sum": 1}}}]
        return {row["_id"]: row["n"] for row in self.cases.aggregate(pipeline) if row["_id"] is not None}

    def remember_follow_up_token(self, token_digest, case_id, expires_at):
        self.follow_up_tokens.insert_one({"_id": token_digest, "case_id": case_id, "expires_at": expires_at})

    def case_for_follow_up_token(self, token_digest):
        found = self.follow_up_tokens.find_one({"_id": token_digest})
        return found and found["case_id"]

    def count_open_by_status(self):
        # one indexed count per status rather than a $group over every case
        return {status: self.cases.count_documents({"status": status}) for status in OPEN_STATUSES}

    def count_triage(self):
        """Open cases still waiting for a person to place them in a grid."""
        # by status and grid (an index): a match on triage first is a scan of every case on some stores
        return sum(self.cases.count_documents({"status": status, "grid_id": None, "triage": True}) for status in OPEN_STATUSES)

    # -- the scorecard ---------------------------------------------------------

    def cases_for_period(self, start, end, fields, areas=({},)):
        """Every case with something to count in ``[start, end)`` (and some with nothing,
        which the figures skip) within any of ``areas`` (filters on one field each), with
        ``fields`` only. Whatever happens to a case sets its ``updated_at``, except a
        deadline passing: a few indexed reads joined here, since ``$or`` and ``$and``
        are scans on some stores. One field's range a read: SecantusDB scans the whole
        collection for ``updated_at >= start`` with ``opened_at < end`` (100,000 cases)."""
        projection = {name: 1 for name in fields}
        found = {}
        for area in areas:
            for query in (
                {"updated_at": {"$gte": start}},
                {"sla.resolution.due_at": {"$gte": start, "$lt": end}},
                {"deferral.original_due_at": {"$gte": start, "$lt": end}},
            ):
                for case in self.cases.find({**query, **area}, projection):
                    found[case["_id"]] = case
        return list(found.values())

    # -- the dispatcher's queue and what dispatchers teach the classifier ------

    def dispatch_queue(self, query, skip=0, limit=50):
        """Cases waiting for a dispatcher (within ``query``), longest waiting first."""
        filters = all_of({"awaiting_dispatch": True, "status": {"$in": list(OPEN_STATUSES)}}, query)
        cursor = self.cases.find(filters, {"outbox": 0, "tokens": 0}).sort("dispatch.since", ASCENDING)
        return list(cursor.skip(skip).limit(limit)), self.cases.count_documents(filters)

    def count_waiting_by_reason(self, reasons):
        return {reason: self.cases.count_documents({"awaiting_dispatch": True, "dispatch.reason": reason,
                                                    "status": {"$in": list(OPEN_STATUSES)}})
                for reason in reasons}

    def keep_labelled_example(self, example):
        """One example per case: a later decision on the same case replaces the earlier one."""
        self.labelled_examples.replace_one({"_id": example["_id"]}, example, upsert=True)

    def labelled_examples_since(self, since, skip=0, limit=500):
        query = {"at": {"$gte": since}} if since else {}
        cursor = self.labelled_examples.find(query).sort([("at", ASCENDING), ("_id", ASCENDING)])
        return list(cursor.skip(skip).limit(limit)), self.labelled_examples.count_documents(query)


def all_of(first, second):
    """A filter matching both: one document of conditions where they name different
    fields, as SecantusDB answers a top-level ``$and`` by reading every case (at 20,000
    cases: 345 ms against 16 ms); ``$and`` only where both constrain the same field."""
    if not first or not second:
        return first or second or {}
    if set(first) & set(second):
        return {"$and": [first, second]}
    return {**first, **second}
