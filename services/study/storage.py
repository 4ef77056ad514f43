"""The only code that touches study's collections.

``contents``       study items as they are now
``content_versions`` every earlier version of each study item, one document each
``campaigns``      what goes to which grids when, and its reminder policy
``dispatches``     one document per (campaign, round, grid, kind): the material
                   and its reminders, each published exactly once
``members``        the people of each grid taking part (party members, residents)
``participation``  one document per (campaign, member, kind) of taking part
``sessions``       offline and online meetings with their attendance
"""
from pymongo import ASCENDING, DESCENDING, IndexModel, ReplaceOne

from wangge.mongo import dated_until, insert_keyed, insert_new

# Only documents created with an Idempotency-Key carry one: sparse, so the others
# (and those stored before keys were accepted) stay out of it.
IDEMPOTENCY_INDEX = IndexModel([("idempotency_key", ASCENDING)], unique=True, sparse=True, name="idempotency_key")
WITHOUT_EMBEDDED_HISTORY = {"history": 0}


class StudyStore:
    def __init__(self, database):
        self.contents = database["contents"]
        self.content_versions = database["content_versions"]
        self.campaigns = database["campaigns"]
        self.dispatches = database["dispatches"]
        self.members = database["members"]
        self.participation = database["participation"]
        self.sessions = database["sessions"]

    def ensure_indexes(self, config=None):
        self.contents.create_indexes([IndexModel([("tags", ASCENDING), ("updated_at", DESCENDING)], name="tags")])
        self.content_versions.create_indexes([IndexModel([("content_id", ASCENDING), ("version", ASCENDING)], unique=True, name="content_version")])
        self.campaigns.create_indexes([IndexModel([("next_round_at", ASCENDING)], name="next_round"), IDEMPOTENCY_INDEX])
        self.dispatches.create_indexes([
            IndexModel([("state", ASCENDING), ("due_at", ASCENDING)], name="due"),
            IndexModel([("state", ASCENDING), ("claimed_until", ASCENDING)], name="stale_claims"),
            IndexModel([("claim", ASCENDING)], name="claim"),
            IndexModel([("campaign_id", ASCENDING), ("grid_id", ASCENDING)], name="campaign_grid"),
        ])
        self.members.create_indexes([IndexModel([("grid_id", ASCENDING)], name="grid")])
        self.participation.create_indexes([
            IndexModel([("campaign_id", ASCENDING), ("grid_id", ASCENDING), ("member_id", ASCENDING)], name="campaign_grid_member"),
        ])
        self.sessions.create_indexes([IndexModel([("team", ASCENDING), ("held_at", DESCENDING)], name="team"), IDEMPOTENCY_INDEX])
        self.move_embedded_history()

    def ping(self):
        self.contents.database.client.admin.command("ping")

    # -- contents ------------------------------------------------------------

    def insert_content(self, content):
        self.contents.insert_one(content)
        return content

    def get_content(self, content_id):
        return self.contents.find_one({"_id": content_id}, WITHOUT_EMBEDDED_HISTORY)

    def known_content_ids(self, content_ids):
        return {doc["_id"] for doc in self.contents.find({"_id": {"$in": list(content_ids)}}, {"_id": 1})}

    def contents_for_dispatch(self, content_ids, summary_chars):
        """What a dispatch names of each content: version, title, media and the body's start."""
        pipeline = [
            {"$match": {"_id": {"$in": list(content_ids)}}},
            {"$project": {"version": 1, "title": 1, "media": 1, "summary": {"$substrCP": ["$body", 0, summary_chars]}}},
        ]
        return {doc["_id"]: doc for doc in self.contents.aggregate(pipeline)}

    def revise_content(self, content_id, expected_version, changes):
        """A new version, only if nobody revised it meanwhile (keep the old one first)."""
        updated = self.contents.update_one({"_id": content_id, "version": expected_version}, {"$set": {**changes, "version": expected_version + 1}})
        return updated.modified_count == 1

    def keep_version(self, content_id, version):
        insert_new(self.content_versions, [{**version, "content_id": content_id}])

    def versions_before(self, content_id, version):
        cursor = self.content_versions.find({"content_id": content_id, "version": {"$lt": version}}, {"_id": 0, "content_id": 0})
        return list(cursor.sort("version", ASCENDING))

    def move_embedded_history(self):
        """Contents stored while earlier versions were kept inside them: move those out."""
        for content in self.contents.find({"history": {"$exists": True}}, {"history": 1}):
            insert_new(self.content_versions, [{**version, "content_id": content["_id"]} for version in content["history"]])
            self.contents.update_one({"_id": content["_id"]}, {"$unset": {"history": ""}})

    def find_contents(self, tag=None, skip=0, limit=50):
        query = {"tags": tag} if tag else {}
        cursor = self.contents.find(query, WITHOUT_EMBEDDED_HISTORY).sort("updated_at", DESCENDING)
        return list(cursor.skip(skip).limit(limit)), self.contents.count_documents(query)

    # -- campaigns and dispatches --------------------------------------------

    def insert_campaign(self, campaign):
        """Store a new campaign; ``None`` if one with its idempotency key is there already."""
        return insert_keyed(self.campaigns, campaign)

    def campaign_by_idempotency_key(self, key):
        return self.campaigns.find_one({"idempotency_key": key})

    def get_campaign(self, campaign_id):
        return self.campaigns.find_one({"_id": campaign_id})

    def list_campaigns(self, limit=100):
        return list(self.campaigns.find({}).sort("created_at", DESCENDING).limit(limit))

    def campaigns_with_round_due(self, now):
        return list(self.campaigns.find({"next_round_at": dated_until(now)}))

    def add_dispatches(self, documents):
        """Insert what is missing; dispatches another process created already stay as they are."""
        insert_new(self.dispatches, documents)

    def take_round(self, campaign_id, round_due_at, claim, claim_until, now):
        """Take the round due at ``round_due_at`` to fan it out, unless another process holds it."""
        taken = self.campaigns.update_one(
            {"_id": campaign_id, "next_round_at": round_due_at, "round_claimed_until": {"$not": {"$gt": now}}},
            {"$set": {"round_claim": claim, "round_claimed_until": claim_until}},
        )
        return taken.modified_count == 1

    def advance_round(self, campaign_id, round_due_at, next_round_at):
        """Move the campaign past a round it has fanned out; ``False`` if another process did."""
        moved = self.campaigns.update_one(
            {"_id": campaign_id, "next_round_at": round_due_at},
            {"$set": {"next_round_at": next_round_at, "last_round_at": round_due_at}, "$unset": {"round_claim": "", "round_claimed_until": ""}},
        )
        return moved.modified_count == 1

    def claim_due_dispatches(self, now, claim, claim_until, limit):
        """Take up to ``limit`` due dispatches under ``claim`` (stale claims of a silent
        process included; no two processes get the same one); returns every dispatch
        held under ``claim`` and not yet published."""
        # one indexed query per state: an $or is a collection scan on some stores
        due = [{"state": "pending", "due_at": {"$lte": now}}, {"state": "publishing", "claimed_until": {"$lte": now}}]
        for condition in due:
            candidates = [doc["_id"] for doc in self.dispatches.find(condition, {"_id": 1}).sort("due_at", ASCENDING).limit(limit)]
            if candidates:
                self.dispatches.update_many(
                    {"_id": {"$in": candidates}, **condition},
                    {"$set": {"state": "publishing", "claim": claim, "claimed_until": claim_until}},
                )
        return list(self.dispatches.find({"claim": claim, "state": "publishing"}))

    def finish_dispatches(self, dispatch_ids, state, now):
        if dispatch_ids:
            self.dispatches.update_many({"_id": {"$in": list(dispatch_ids)}, "state": "publishing"},
                                        {"$set": {"state": state, "published_at": now}})

    def finish_claimed(self, claim, state, now):
        """Every dispatch still held under ``claim``, in one indexed write."""
        self.dispatches.update_many({"claim": claim, "state": "publishing"}, {"$set": {"state": state, "published_at": now}})

    def dispatch_counts(self, campaign_id):
        pipeline = [{"$match": {"campaign_id": campaign_id}}, {"$group": {"_id": {"kind": "$kind", "state": "$state"}, "n": {"$sum": 1}}}]
        return [{**row["_id"], "count": row["n"]} for row in self.dispatches.aggregate(pipeline)]

    # -- members and participation -------------------------------------------

    def upsert_members(self, members, now):
        self.members.bulk_write([ReplaceOne({"_id": m["_id"]}, {**m, "updated_at": now}, upsert=True) for m in members], ordered=False)

    def members_by_ids(self, member_ids):
        return {doc["_id"]: doc for doc in self.members.find({"_id": {"$in": list(member_ids)}})}

    def members_of_grid(self, grid_id):
        return list(self.members.find({"grid_id": grid_id}).sort("_id", ASCENDING))

    def participants_of(self, campaign_id, grid_id):
        return set(self.participation.distinct("member_id", {"campaign_id": campaign_id, "grid_id": grid_id}))

    def participation_in_grid(self, campaign_id, grid_id):
        """Every (member, kind) of taking part in the campaign in one grid: ``member_id``, ``kind``, ``at``."""
        return list(self.participation.find({"campaign_id": campaign_id, "grid_id": grid_id}, {"_id": 0, "member_id": 1, "kind": 1, "at": 1}))

    def record_participation(self, entries):
        """Store each (campaign, member, kind) once, all in one batch; returns how many were new."""
        return insert_new(self.participation, entries)

    def members_per_grid(self):
        """Members by grid, every grid, in one group over the roster. A match on a county's
        grids first (``$in`` of 1,429 ids) took SecantusDB 4.3 s over 4,287 members, every
        other command waiting meanwhile; the plain group takes 50 ms."""
        pipeline = [{"$group": {"_id": "$grid_id", "n": {"$sum": 1}}}]
        return {row["_id"]: row["n"] for row in self.members.aggregate(pipeline)}

    def participants_per_grid(self, campaign_id):
        pipeline = [
            {"$match": {"campaign_id": campaign_id}},
            {"$group": {"_id": {"grid": "$grid_id", "member": "$member_id"}}},
            {"$group": {"_id": "$_id.grid", "n": {"$sum": 1}}},
        ]
        return {row["_id"]: row["n"] for row in self.participation.aggregate(pipeline)}

    # -- sessions ------------------------------------------------------------

    def insert_session(self, session):
        """Store a new session; ``None`` if one with its idempotency key is there already."""
        return insert_keyed(self.sessions, session)

    def session_by_idempotency_key(self, key):
        return self.sessions.find_one({"idempotency_key": key})

    def get_session(self, session_id):
        return self.sessions.find_one({"_id": session_id})

    def add_attendees(self, session_id, member_ids):
        self.sessions.update_one({"_id": session_id}, {"$addToSet": {"attendees": {"$each": list(member_ids)}}})

    def team_report(self):
        pipeline = [
            {"$group": {"_id": "$team", "sessions": {"$sum": 1}, "attendance": {"$sum": {"$size": "$attendees"}},
                        "kinds": {"$addToSet": "$kind"}}},
            {"$sort": {"_id": 1}},
        ]
        return [{"team": row["_id"], "sessions": row["sessions"], "attendance": row["attendance"], "kinds": sorted(row["kinds"])}
                for row in self.sessions.aggregate(pipeline)]
