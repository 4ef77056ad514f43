"""The only code that touches care's collections.

``residents``   priority residents (重点关爱对象): who, where, kinds, their worker,
                last visit and next due time
``visits``      every home visit (入户走访), with the needs filed from it as requests
``dues``        one document per due time of a resident: when it fell due and
                when (whether) a visit met it; the visit indicators count these
``notices``     one document per (resident, due time, stage) of ``visit_overdue``,
                each published exactly once
``endings``     residents whose care ended: why and when, no personal data
``activities``  volunteer activities with their participants
``todo``        the public to-do list (为民办事清单), with each item's progress
"""
import uuid

from pymongo import ASCENDING, DESCENDING, IndexModel

from wangge.mongo import dated_until, insert_keyed, insert_new

IDEMPOTENCY_INDEX = IndexModel([("idempotency_key", ASCENDING)], unique=True, sparse=True, name="idempotency_key")
LEVEL_FIELDS = {"grid": "grid_id", "community": "community_id", "town": "town_id"}


class CareStore:
    def __init__(self, database):
        self.residents = database["residents"]
        self.visits = database["visits"]
        self.dues = database["dues"]
        self.notices = database["notices"]
        self.endings = database["endings"]
        self.activities = database["activities"]
        self.todo = database["todo"]

    def ensure_indexes(self, config=None):
        self.residents.create_indexes([
            IndexModel([("grid_id", ASCENDING), ("next_visit_due", ASCENDING)], name="grid_due"),
            IndexModel([("next_visit_due", ASCENDING)], name="due"),
        ])
        self.visits.create_indexes([IndexModel([("resident_id", ASCENDING), ("visited_at", DESCENDING)], name="resident"), IDEMPOTENCY_INDEX])
        self.dues.create_indexes([
            IndexModel([("resident_id", ASCENDING), ("done_at", ASCENDING)], name="resident_open"),
            IndexModel([("due_at", ASCENDING)], name="due"),
        ])
        self.notices.create_indexes([
            IndexModel([("state", ASCENDING), ("notify_at", ASCENDING)], name="due"),
            IndexModel([("state", ASCENDING), ("claimed_until", ASCENDING)], name="stale_claims"),
            IndexModel([("claim", ASCENDING)], name="claim"),
            IndexModel([("resident_id", ASCENDING), ("due_at", ASCENDING)], name="resident_due"),
        ])
        self.activities.create_indexes([IndexModel([("starts_at", ASCENDING)], name="starts"), IDEMPOTENCY_INDEX])
        self.todo.create_indexes([IndexModel([("town_id", ASCENDING), ("promised_by", ASCENDING)], name="town")])

    def ping(self):
        self.residents.database.client.admin.command("ping")

    # -- residents -------------------------------------------------------------

    def insert_resident(self, resident):
        self.residents.insert_one(resident)
        return resident

    def get_resident(self, resident_id):
        return self.residents.find_one({"_id": resident_id})

    def find_residents(self, grid_id=None, overdue_at=None, skip=0, limit=50):
        """Residents of a grid (or all), by name; with ``overdue_at``, those past their due time then, longest overdue first."""
        query = {"grid_id": grid_id} if grid_id else {}
        order = ("_id", ASCENDING)
        if overdue_at is not None:
            query["next_visit_due"] = dated_until(overdue_at, inclusive=False)
            order = ("next_visit_due", ASCENDING)
        return list(self.residents.find(query).sort(*order).skip(skip).limit(limit)), self.residents.count_documents(query)

    def count_overdue(self, now):
        return self.residents.count_documents({"next_visit_due": dated_until(now, inclusive=False)})

    def residents_per_worker(self, grid_id):
        pipeline = [{"$match": {"grid_id": grid_id}}, {"$group": {"_id": "$worker_id", "n": {"$sum": 1}}}]
        return {row["_id"]: row["n"] for row in self.residents.aggregate(pipeline)}

    def change_resident(self, resident, changes):
        """Apply ``changes`` to the resident as read; ``False`` if it changed meanwhile
        (a visit moved its schedule, another change): read again. A move to another
        grid takes the open due time along."""
        unchanged = {"_id": resident["_id"], "next_visit_due": resident["next_visit_due"], "grid_id": resident["grid_id"]}
        if self.residents.update_one(unchanged, {"$set": changes}).modified_count != 1:
            return False
        if changes.get("grid_id", resident["grid_id"]) != resident["grid_id"]:
            self.dues.update_many({"resident_id": resident["_id"], "done_at": None},
                                  {"$set": {key: changes.get(key) for key in ("grid_id", "community_id", "town_id")}})
        return True

    def end_care(self, resident, ending, now):
        """Record the ending, call off the resident's notices, drop a due time not yet
        reached (one already missed stays on record), erase the words of their visits
        and remove the resident; returns how many visits were erased. Each step may be
        repeated: an ending interrupted half-way is finished by asking again."""
        self.endings.replace_one({"_id": resident["_id"]}, ending, upsert=True)
        self.notices.update_many({"resident_id": resident["_id"], "state": {"$in": ["pending", "publishing"]}},
                                 {"$set": {"state": "called_off"}})
        self.dues.delete_many({"resident_id": resident["_id"], "done_at": None, "due_at": {"$gt": now}})
        erased = 0
        for visit in self.visits.find({"resident_id": resident["_id"], "erased": {"$ne": True}}, {"needs": 1}):
            needs = [{**need, "text": None} for need in visit.get("needs") or []]
            erased += self.visits.update_one({"_id": visit["_id"]}, {"$set": {"notes": None, "needs": needs, "erased": True}}).modified_count
        self.residents.delete_one({"_id": resident["_id"]})
        return erased

    def get_ending(self, resident_id):
        return self.endings.find_one({"_id": resident_id})

    def advance_schedule(self, resident_id, visited_at, next_due):
        """Move a resident to the next due time after a visit, unless a later visit is recorded already."""
        moved = self.residents.update_one(
            {"_id": resident_id, "last_visited_at": {"$not": {"$gte": visited_at}}},
            {"$set": {"last_visited_at": visited_at, "next_visit_due": next_due}})
        return moved.modified_count == 1

    # -- due times and their notices -------------------------------------------

    def add_due(self, due, notices):
        insert_new(self.dues, [due])
        insert_new(self.notices, notices)

    def open_due(self, resident_id):
        return self.dues.find_one({"resident_id": resident_id, "done_at": None})

    def close_due(self, due, done_at, visit_id):
        """Meet a due time with a visit; ``False`` if another visit met it first. Its notices
        not sent yet are called off."""
        closed = self.dues.update_one({"_id": due["_id"], "done_at": None}, {"$set": {"done_at": done_at, "visit_id": visit_id}})
        self.notices.update_many({"resident_id": due["resident_id"], "due_at": due["due_at"], "state": "pending"},
                                 {"$set": {"state": "called_off"}})
        return closed.modified_count == 1

    def claim_due_notices(self, now, claim_until, limit):
        """Take up to ``limit`` notices due now for this process (stale claims of a silent
        process included); no two processes get the same one."""
        # one indexed query per state: an $or is a collection scan on some stores
        due = [{"state": "pending", "notify_at": {"$lte": now}}, {"state": "publishing", "claimed_until": {"$lte": now}}]
        claim = uuid.uuid4().hex
        for condition in due:
            candidates = [doc["_id"] for doc in self.notices.find(condition, {"_id": 1}).sort("notify_at", ASCENDING).limit(limit)]
            if candidates:
                self.notices.update_many({"_id": {"$in": candidates}, **condition},
                                         {"$set": {"state": "publishing", "claim": claim, "claimed_until": claim_until}})
        return list(self.notices.find({"claim": claim}))

    def finish_notices(self, notice_ids, state, now):
        if notice_ids:
            self.notices.update_many({"_id": {"$in": list(notice_ids)}, "state": "publishing"},
                                     {"$set": {"state": state, "published_at": now}})

    def notice_counts(self):
        pipeline = [{"$group": {"_id": {"stage": "$stage", "state": "$state"}, "n": {"$sum": 1}}}]
        return {(row["_id"]["stage"], row["_id"]["state"]): row["n"] for row in self.notices.aggregate(pipeline)}

    def visit_indicators(self, level, start, end):
        """Per area of ``level``: due times that fell in ``[start, end)``, and those met by a visit in time."""
        key = LEVEL_FIELDS[level]
        pipeline = [
            {"$match": {"due_at": {"$gte": start, "$lt": end}}},
            {"$group": {"_id": f"${key}", "due": {"$sum": 1}, "on_time": {"$sum": {"$cond": [
                {"$and": [{"$gt": ["$done_at", None]}, {"$lte": ["$done_at", "$due_at"]}]}, 1, 0]}}}},
            {"$sort": {"_id": 1}},
        ]
        return [{key: row["_id"], "visits_due": row["due"], "visits_on_time": row["on_time"]} for row in self.dues.aggregate(pipeline)]

    # -- visits ----------------------------------------------------------------

    def insert_visit(self, visit):
        """Store a visit; ``None`` if one with its idempotency key is there already."""
        return insert_keyed(self.visits, visit)

    def visit_by_idempotency_key(self, key):
        return self.visits.find_one({"idempotency_key": key})

    def record_needs(self, visit_id, needs):
        self.visits.update_one({"_id": visit_id}, {"$set": {"needs": needs}})

    def get_visit(self, visit_id):
        return self.visits.find_one({"_id": visit_id})

    def visits_of(self, resident_id, limit=20):
        return list(self.visits.find({"resident_id": resident_id}).sort("visited_at", DESCENDING).limit(limit))

    # -- volunteers ------------------------------------------------------------

    def insert_activity(self, activity):
        return insert_keyed(self.activities, activity)

    def activity_by_idempotency_key(self, key):
        return self.activities.find_one({"idempotency_key": key})

    def volunteer_report(self, level, start, end):
        """Per area of ``level``: activities starting in ``[start, end)``, their participants and
        volunteer hours (each activity's hours times its participants)."""
        key = LEVEL_FIELDS[level]
        pipeline = [
            {"$match": {"starts_at": {"$gte": start, "$lt": end}, key: {"$ne": None}}},
            {"$group": {"_id": f"${key}", "activities": {"$sum": 1}, "participants": {"$sum": "$participant_count"},
                        "hours": {"$sum": {"$multiply": ["$hours", "$participant_count"]}}}},
            {"$sort": {"_id": 1}},
        ]
        return [{key: row["_id"], "activities": row["activities"], "participants": row["participants"], "hours": round(row["hours"], 2)}
                for row in self.activities.aggregate(pipeline)]

    # -- the public to-do list -------------------------------------------------

    def insert_todo(self, item):
        self.todo.insert_one(item)
        return item

    def get_todo(self, item_id):
        return self.todo.find_one({"_id": item_id})

    def update_todo(self, item_id, version, changes, entry):
        """Change an item and add to its history, only if nobody changed it meanwhile."""
        updated = self.todo.update_one({"_id": item_id, "version": version},
                                       {"$set": {**changes, "version": version + 1}, "$push": {"history": entry}})
        return updated.modified_count == 1

    def todo_of_town(self, town_id=None, limit=500):
        query = {"town_id": town_id} if town_id else {}
        return list(self.todo.find(query).sort([("promised_by", ASCENDING), ("_id", ASCENDING)]).limit(limit))

