"""Notifications as notify stores them, for tests of sending."""
import uuid
from datetime import datetime, timezone

from services.notify import delivery
from services.notify.recipients import Recipient
from services.notify.templates import Templates
from wangge import events

TEMPLATES = Templates("Asia/Shanghai")
# settings as in config.yml, quiet hours left out: a test may run at any hour
CONFIG = {
    "ROUTES": {"member": "sms", "worker": "wecom"},
    "QUIET_HOURS": {"START": "22:00", "END": "07:00", "TIMEZONE": "Asia/Shanghai", "ROLES": []},
    "DELIVERY": {"MAX_ATTEMPTS": 3, "BACKOFF_SECONDS": 5, "MAX_BACKOFF_SECONDS": 60, "CLAIM_SECONDS": 60},
}


def reminder(channel="sms", member_id=None, now=None):
    """A study reminder to one member, planned and not yet stored."""
    now = now or datetime.now(timezone.utc)
    member = Recipient("member", member_id or f"m-{uuid.uuid4().hex[:8]}", "周婷艳", "13800000011", "member@example.org")
    envelope = {
        "event_id": uuid.uuid4().hex, "event_type": events.STUDY_REMINDER_DUE, "occurred_at": now,
        "data": {"campaign_id": "CP-1", "round": "2026-11-28T01:00:00+00:00", "title": "学习贯彻主题教育",
                 "grid_id": "G-1", "grid_name": "悦山网格", "due_at": now, "members": []},
    }
    return delivery.plan_notification(envelope, member, "study_reminder_due.member", channel, TEMPLATES, CONFIG, now)
