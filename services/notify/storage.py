"""The only code that touches notify's collections.

``notifications``  every notification, stored before its first attempt, with its
                   status, attempts, what each attempt met, and the claim of the
                   process sending it
``announcements``  the outcomes (notification_sent/failed) of one recorded batch of
                   sends, until the broker has taken them
``preferences``    a recipient's chosen channel, by recipient key
``resends``        every operator's re-send (who, which notification, for whom), kept
                   while it counts against the recipient's limit
"""
import uuid
from datetime import datetime, timedelta, timezone

from eventlet.semaphore import Semaphore
from pymongo import ASCENDING, DESCENDING, IndexModel, UpdateOne

from wangge.mongo import GroupCommit, inserted

from services.notify.delivery import DUE, FAILED, HELD, PENDING, SENDING, SENT


# Choices stamped by a replica whose clock runs behind are still found by the next refresh.
CLOCK_SKEW = timedelta(minutes=5)


class NotificationStore:
    def __init__(self, database, preferences_refresh_seconds=0):
        self.notifications = database["notifications"]
        self.preferences = database["preferences"]
        self.resends = database["resends"]
        self.announcements = database["announcements"]
        self._insert = GroupCommit(self._insert_batches)
        self._preferences = GroupCommit(self._preferences_batches)
        self._mirror = PreferencesMirror(self.preferences, preferences_refresh_seconds) if preferences_refresh_seconds > 0 else None

    def ensure_indexes(self, config=None):
        # Earlier versions looked for due notifications of every channel at once;
        # a channel's backlog then hid the others'.
        # and kept each outcome's announcement in its notification, one more write of
        # every notification to clear it (and one more index to keep)
        for earlier in ("due", "announcement_pending"):
            if earlier in self.notifications.index_information():
                self.notifications.drop_index(earlier)
        self.notifications.create_indexes([
            IndexModel([("status", ASCENDING), ("channel", ASCENDING), ("next_attempt_at", ASCENDING)], name="due_by_channel"),
            IndexModel([("tracking_no", ASCENDING), ("created_at", ASCENDING)], name="tracking_no"),
            IndexModel([("case_id", ASCENDING), ("created_at", ASCENDING)], name="case_id"),
            IndexModel([("campaign_id", ASCENDING), ("created_at", ASCENDING)], name="campaign_id"),
            IndexModel([("recipient.key", ASCENDING), ("created_at", DESCENDING)], name="recipient"),
            IndexModel([("created_at", DESCENDING)], name="created_at"),
        ])
        self.resends.create_indexes([
            IndexModel([("recipient", ASCENDING), ("at", ASCENDING)], name="recipient"),
            IndexModel([("expires_at", ASCENDING)], name="expires", expireAfterSeconds=0),
        ])
        self.announcements.create_indexes([IndexModel([("queued_at", ASCENDING)], name="queued_at")])
        self.preferences.create_indexes([IndexModel([("updated_at", ASCENDING)], name="updated_at")])
        self.forget_robot_keys()
        self.move_announcements()

    def forget_robot_keys(self):
        """Earlier versions took a WeCom robot key from whoever set a preference and
        copied it into each notification; robots are notify's own setting now, and
        a key is a secret nobody should find in the store."""
        self.preferences.update_many({"wecom_key": {"$exists": True}}, {"$unset": {"wecom_key": ""}})
        self.notifications.update_many({"address.wecom_key": {"$exists": True}}, {"$unset": {"address": ""}})

    def ping(self):
        self.notifications.database.client.admin.command("ping")

    def insert_new(self, notifications):
        """Store the notifications not stored before (by (event, recipient, channel)); the
        ones that were new. Concurrent handlers' notifications share one insert."""
        return self._insert(list(notifications))

    def _insert_batches(self, batches):
        new = {notification["_id"] for notification in inserted(self.notifications, [n for batch in batches for n in batch])}
        return [[notification for notification in batch if notification["_id"] in new] for batch in batches]

    def due_ids(self, channel, now, limit, statuses=DUE):
        """The channel's due notifications of ``statuses``, oldest first: by default also
        held ones and sends that never reported back (a crashed process). One indexed
        query per status: an $or or $in is a collection scan on some stores."""
        due = []
        for status in statuses:
            query = {"status": status, "channel": channel, "next_attempt_at": {"$lte": now}}
            due += self.notifications.find(query, {"next_attempt_at": 1}).sort("next_attempt_at", ASCENDING).limit(limit)
        return [found["_id"] for found in sorted(due, key=lambda found: found["next_attempt_at"])[:limit]]

    def claim(self, notification_ids, claim, now, claim_for):
        """Take the due ones of these notifications for one send each under ``claim``; of
        two processes only one gets each. The ones taken, in the order asked for."""
        self.notifications.update_many(
            {"_id": {"$in": list(notification_ids)}, "status": {"$in": list(DUE)}, "next_attempt_at": {"$lte": now}},
            {"$set": {"status": SENDING, "claim": claim, "next_attempt_at": now + claim_for}},
        )
        taken = self.claimed(claim, notification_ids)
        return [taken[notification_id] for notification_id in notification_ids if notification_id in taken]

    def renew(self, notifications, claim, now, claim_for):
        """Claim again, under ``claim``, notifications this process holds whose claim is
        running short (each still under the claim it was taken with)."""
        if not notifications:
            return {}
        for held in {notification["claim"] for notification in notifications}:
            self.notifications.update_many(
                {"_id": {"$in": [n["_id"] for n in notifications if n["claim"] == held]}, "claim": held},
                {"$set": {"claim": claim, "next_attempt_at": now + claim_for}})
        return self.claimed(claim, [notification["_id"] for notification in notifications])

    def claimed(self, claim, notification_ids):
        return {found["_id"]: found for found in self.notifications.find({"_id": {"$in": list(notification_ids)}, "claim": claim})}

    def record_outcomes(self, claim, now, outcomes, announcement=None):
        """What each send under ``claim`` met: ``outcomes`` are ``(notification_id, error,
        retry_at)``, ``error`` ``None`` for sent; ``retry_at`` ``None`` after a failure
        fails it for good. ``announcement`` (the settled ones' outcome events, with its ``_id``) is stored
        first: a process dying before the outcomes are recorded may announce a send twice,
        never not at all. The ids recorded: a notification whose claim ran out and another
        process took records nothing here (that process records its own outcome)."""
        if not outcomes:
            return set()
        if announcement and announcement["events"]:
            self.announcements.insert_one(dict(announcement))
        failed = [UpdateOne({"_id": notification_id, "claim": claim}, outcome_update(claim, now, error, retry_at))
                  for notification_id, error, retry_at in outcomes if error is not None]
        modified = self.notifications.bulk_write(failed, ordered=False).modified_count if failed else 0
        if len(failed) < len(outcomes):
            # the sends that went out are all that is left under this claim (the rest was
            # released or recorded just now): one indexed write for all of them
            modified += self.notifications.update_many({"_id": {"$in": [o[0] for o in outcomes if o[1] is None]}, "claim": claim},
                                                       outcome_update(claim, now, None, None)).modified_count
        ids = [outcome[0] for outcome in outcomes]
        if modified == len(outcomes):
            return set(ids)
        recorded = self.notifications.find({"_id": {"$in": ids}, "attempt_log": {"$elemMatch": {"claim": claim}}}, {"_id": 1})
        return {found["_id"] for found in recorded}

    def release(self, notification_ids, claim, now):
        """Hand back claimed notifications that were not sent (their send's time ran out
        before their turn): due again at once, no attempt counted."""
        if notification_ids:
            self.notifications.update_many({"_id": {"$in": list(notification_ids)}, "claim": claim},
                                           {"$set": {"status": PENDING, "next_attempt_at": now}, "$unset": {"claim": ""}})

    def pending_announcements(self, now, limit=200):
        """Outcomes the broker has not taken yet, a recorded batch each, oldest first."""
        return list(self.announcements.find({"queued_at": {"$lte": now}}).sort("queued_at", ASCENDING).limit(limit))

    def clear_announcements(self, announcement_ids):
        """Drop the batches of outcomes the broker took, in one write."""
        if announcement_ids:
            self.announcements.delete_many({"_id": {"$in": list(announcement_ids)}})

    def move_announcements(self):
        """Outcomes earlier versions kept in their notifications, not yet announced: into announcements."""
        for found in self.notifications.find({"announcement": {"$exists": True}}, {"announcement": 1}):
            announcement = found["announcement"]
            self.announcements.insert_one({"_id": found["_id"], "queued_at": announcement["queued_at"],
                                           "queued_by": announcement["queued_by"], "events": [announcement["event"]]})
            self.notifications.update_one({"_id": found["_id"]}, {"$unset": {"announcement": ""}})

    def reset_for_resend(self, notification_id, now, hold, by):
        """An operator's re-send: a failed (or sent) notification goes out again, at
        once or, held for quiet hours, at ``hold``."""
        reset = self.notifications.update_one(
            {"_id": notification_id, "status": {"$in": [FAILED, SENT]}},
            {"$set": {"status": HELD if hold else PENDING, "next_attempt_at": hold or now, "attempts": 0, "held_until": hold},
             "$push": {"attempt_log": {"at": now, "outcome": "resend requested", "by": by}}},
        )
        return reset.modified_count == 1

    # -- re-sends ---------------------------------------------------------------

    def record_resend(self, recipient_key, notification_id, by, now, counts_until):
        """Note a re-send against its recipient (it counts until ``counts_until``); returns its id."""
        resend_id = uuid.uuid4().hex
        self.resends.insert_one({"_id": resend_id, "recipient": recipient_key, "notification_id": notification_id,
                                 "by": by, "at": now, "expires_at": counts_until})
        return resend_id

    def forget_resend(self, resend_id):
        self.resends.delete_one({"_id": resend_id})

    def resends_since(self, recipient_key, since):
        """When each re-send to the recipient after ``since`` was asked for, oldest first."""
        cursor = self.resends.find({"recipient": recipient_key, "at": {"$gt": since}}, {"at": 1}).sort("at", ASCENDING)
        return [found["at"] for found in cursor]

    def get(self, notification_id):
        return self.notifications.find_one({"_id": notification_id})

    def find(self, query, skip=0, limit=100):
        cursor = self.notifications.find(query).sort("created_at", ASCENDING)
        return list(cursor.skip(skip).limit(limit)), self.notifications.count_documents(query)

    def count_held(self):
        return self.notifications.count_documents({"status": HELD})

    # -- preferences --------------------------------------------------------

    def preferences_for(self, recipient_keys):
        """Each recipient's preferences, by key (none for those without): from this process's
        mirror of them when it keeps one, else read, concurrent handlers' look-ups sharing one query."""
        if self._mirror is not None:
            return self._mirror.preferences_for(recipient_keys)
        return self._preferences(list(recipient_keys))

    def _preferences_batches(self, batches):
        found = {doc["_id"]: doc for doc in self.preferences.find({"_id": {"$in": sorted({key for keys in batches for key in keys})}})}
        return [{key: found[key] for key in keys if key in found} for keys in batches]

    def save_preferences(self, recipient_key, preferences, now):
        self.preferences.replace_one({"_id": recipient_key}, {**preferences, "updated_at": now}, upsert=True)
        saved = self.preferences.find_one({"_id": recipient_key})
        if self._mirror is not None:
            self._mirror.saved(saved)
        return saved


class PreferencesMirror:
    """Every recipient's chosen channel as this process last read them: the whole
    collection once (people who chose one: a county's staff, a few residents and groups,
    a few thousand small documents), then every ``refresh_seconds`` the ones changed since,
    so a notice costs no read. A choice made through this process is seen at once, one made
    through another replica within ``refresh_seconds``."""

    def __init__(self, collection, refresh_seconds):
        self.collection = collection
        self.refresh_every = timedelta(seconds=refresh_seconds)
        self.known = {}
        self.read_at = None  # when the last refresh began (this host's clock)
        self.changed_since = None  # the newest updated_at read so far, never later than this host's clock
        self.reading = Semaphore()

    def preferences_for(self, recipient_keys):
        now = datetime.now(timezone.utc)
        if self.read_at is None:
            # before the first read nobody answers: an empty answer would send on the default channels
            with self.reading:
                if self.read_at is None:
                    self.refresh(now)
        elif now - self.read_at >= self.refresh_every and self.reading.acquire(blocking=False):
            # one green thread refreshes; the others answer from what is known meanwhile
            try:
                self.refresh(now)
            finally:
                self.reading.release()
        return {key: self.known[key] for key in recipient_keys if key in self.known}

    def refresh(self, now):
        query = {} if self.changed_since is None else {"updated_at": {"$gte": self.changed_since - CLOCK_SKEW}}
        for found in self.collection.find(query):
            self.saved(found, now)
        self.read_at = now

    def saved(self, preferences, now=None):
        """Keep ``preferences`` unless a later choice of the same recipient is known (a
        refresh may read a document just before this process saved a newer one)."""
        stamped = preferences.get("updated_at")
        kept = self.known.get(preferences["_id"])
        if kept is not None and stamped is not None and kept.get("updated_at") is not None and kept["updated_at"] > stamped:
            return
        self.known[preferences["_id"]] = preferences
        if stamped is not None:
            # a replica whose clock runs ahead must not move the next read past other replicas' choices
            stamped = min(stamped, now or datetime.now(timezone.utc))
            self.changed_since = max(self.changed_since or stamped, stamped)


def outcome_update(claim, now, error, retry_at):
    if error is None:
        outcome = {"status": SENT, "sent_at": now, "last_error": None, "next_attempt_at": None}
        attempt = {"at": now, "outcome": SENT, "claim": claim}
    else:
        outcome = {"status": PENDING, "next_attempt_at": retry_at} if retry_at else {"status": FAILED, "next_attempt_at": None}
        outcome["last_error"] = error
        attempt = {"at": now, "outcome": "error", "error": error, "claim": claim}
    return {"$set": outcome, "$unset": {"claim": ""}, "$inc": {"attempts": 1}, "$push": {"attempt_log": attempt}}
