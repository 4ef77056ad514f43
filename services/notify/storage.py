"""The only code that touches notify's collections.

``notifications``  every notification, stored before its first attempt, with its
                   status, attempts and what each attempt met
``preferences``    a recipient's chosen channel (and WeCom robot key), by recipient key
"""
from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.errors import DuplicateKeyError

from services.notify.delivery import FAILED, HELD, PENDING, SENDING, SENT, WAITING


class NotificationStore:
    def __init__(self, database):
        self.notifications = database["notifications"]
        self.preferences = database["preferences"]

    def ensure_indexes(self, config=None):
        self.notifications.create_indexes([
            IndexModel([("status", ASCENDING), ("next_attempt_at", ASCENDING)], name="due"),
            IndexModel([("tracking_no", ASCENDING), ("created_at", ASCENDING)], name="tracking_no"),
            IndexModel([("case_id", ASCENDING), ("created_at", ASCENDING)], name="case_id"),
            IndexModel([("campaign_id", ASCENDING), ("created_at", ASCENDING)], name="campaign_id"),
            IndexModel([("recipient.key", ASCENDING), ("created_at", DESCENDING)], name="recipient"),
            IndexModel([("created_at", DESCENDING)], name="created_at"),
        ])

    def ping(self):
        self.notifications.database.client.admin.command("ping")

    def insert_new(self, notification):
        """``False`` if this (event, recipient, channel) was stored before."""
        try:
            self.notifications.insert_one(notification)
        except DuplicateKeyError:
            return False
        return True

    def due_ids(self, now, limit=200):
        """Due notifications, including sends that never reported back (a crashed
        process). One indexed query per status: an $or is a collection scan on
        some stores, and this runs every second."""
        due = []
        for status in (*WAITING, SENDING):
            query = {"status": status, "next_attempt_at": {"$lte": now}}
            due += [doc["_id"] for doc in self.notifications.find(query, {"_id": 1}).sort("next_attempt_at", ASCENDING).limit(limit)]
        return due[:limit]

    def claim(self, notification_id, now, claim_for):
        """Take a due notification for sending; of two processes only one gets it."""
        claimed = self.notifications.update_one(
            {"_id": notification_id, "status": {"$in": [*WAITING, SENDING]}, "next_attempt_at": {"$lte": now}},
            {"$set": {"status": SENDING, "next_attempt_at": now + claim_for}},
        )
        return self.notifications.find_one({"_id": notification_id}) if claimed.modified_count == 1 else None

    def record_sent(self, notification_id, now):
        self.notifications.update_one(
            {"_id": notification_id, "status": SENDING},
            {"$set": {"status": SENT, "sent_at": now, "last_error": None},
             "$inc": {"attempts": 1}, "$push": {"attempt_log": {"at": now, "outcome": SENT}}},
        )

    def record_failure(self, notification_id, now, error, retry_at):
        """Back to pending until ``retry_at``, or failed for good when it is ``None``."""
        status = PENDING if retry_at else FAILED
        self.notifications.update_one(
            {"_id": notification_id, "status": SENDING},
            {"$set": {"status": status, "next_attempt_at": retry_at or now, "last_error": error},
             "$inc": {"attempts": 1}, "$push": {"attempt_log": {"at": now, "outcome": "error", "error": error}}},
        )

    def reset_for_resend(self, notification_id, now):
        """An operator's re-send: a failed (or sent) notification goes out again."""
        reset = self.notifications.update_one(
            {"_id": notification_id, "status": {"$in": [FAILED, SENT]}},
            {"$set": {"status": PENDING, "next_attempt_at": now, "attempts": 0, "held_until": None},
             "$push": {"attempt_log": {"at": now, "outcome": "resend requested"}}},
        )
        return reset.modified_count == 1

    def get(self, notification_id):
        return self.notifications.find_one({"_id": notification_id})

    def find(self, query, skip=0, limit=100):
        cursor = self.notifications.find(query).sort("created_at", ASCENDING)
        return list(cursor.skip(skip).limit(limit)), self.notifications.count_documents(query)

    def count_held(self):
        return self.notifications.count_documents({"status": HELD})

    # -- preferences --------------------------------------------------------

    def preferences_for(self, recipient_keys):
        return {doc["_id"]: doc for doc in self.preferences.find({"_id": {"$in": list(recipient_keys)}})}

    def save_preferences(self, recipient_key, preferences, now):
        self.preferences.replace_one({"_id": recipient_key}, {**preferences, "updated_at": now}, upsert=True)
        return self.preferences.find_one({"_id": recipient_key})
