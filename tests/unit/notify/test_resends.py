"""An operator's re-sends over a real store: a limit per recipient, quiet hours kept."""
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from services.notify import delivery, resends
from tests.unit.notify.factories import reminder

LIMIT = resends.ResendLimit(per_recipient=2, window=timedelta(hours=1))
QUIET = {"START": "22:00", "END": "07:00", "TIMEZONE": "Asia/Shanghai", "ROLES": ["resident", "member"]}
NIGHT = datetime(2026, 11, 28, 16, 0, tzinfo=timezone.utc)  # 00:00 in the county
DAY = datetime(2026, 11, 28, 4, 0, tzinfo=timezone.utc)  # 12:00


def settled(store, status=delivery.FAILED, member_id=None, **changes):
    notification = {**reminder("sms", member_id=member_id), "status": status, "next_attempt_at": None, **changes}
    assert store.insert_new([notification])
    return notification


def resend(store, notification, now=DAY):
    return resends.resend(store, LIMIT, QUIET, store.get(notification["_id"]), "operator", now)


def settle_again(store, notification):
    store.notifications.update_one({"_id": notification["_id"]}, {"$set": {"status": delivery.SENT}})


def test_a_recipient_gets_at_most_the_limit_of_resends_within_the_window_then_429_naming_it(store):
    notification = settled(store)
    for minutes in (0, 10):
        assert resend(store, notification, DAY + timedelta(minutes=minutes))["status"] == delivery.PENDING
        settle_again(store, notification)
    with pytest.raises(resends.TooManyResends) as refused:
        resend(store, notification, DAY + timedelta(minutes=20))
    assert refused.value.http_status == 429
    assert refused.value.details["limit"] == {"per_recipient": 2, "window_minutes": 60.0}
    assert refused.value.headers == {"Retry-After": str(40 * 60)}  # when the first re-send stops counting
    assert "At most 2 re-sends" in str(refused.value)
    # a refused re-send does not count: once the first has aged out, one more goes through
    assert resend(store, notification, DAY + timedelta(minutes=60))["status"] == delivery.PENDING


def test_the_limit_is_per_recipient_across_their_notifications(store):
    member = f"m-{uuid.uuid4().hex[:6]}"
    first, second = settled(store, member_id=member), settled(store, member_id=member)
    someone_else = settled(store)
    resend(store, first)
    resend(store, second)
    with pytest.raises(resends.TooManyResends):
        resend(store, settled(store, member_id=member))
    assert resend(store, someone_else)["status"] == delivery.PENDING


def test_a_resend_of_a_notification_still_being_sent_is_refused_and_not_counted(store):
    notification = settled(store)
    sending = settled(store, status=delivery.SENDING, member_id=notification["recipient"]["key"])
    for _ in range(3):
        with pytest.raises(resends.StillSending):
            resend(store, sending)
    assert resend(store, notification)["status"] == delivery.PENDING


def test_a_residents_text_resent_at_night_waits_for_the_morning(store):
    notification = settled(store)
    held = resend(store, notification, NIGHT)
    assert held["status"] == delivery.HELD
    assert held["held_until"].replace(tzinfo=timezone.utc) == datetime(2026, 11, 28, 23, 0, tzinfo=timezone.utc)  # 07:00
    assert store.due_ids("sms", NIGHT + timedelta(hours=1), limit=10) == []
    assert held["attempt_log"][-1]["by"] == "operator"


@pytest.mark.parametrize("changes", [{"urgent": True}, {"channel": "wecom"}], ids=["urgent", "not a text"])
def test_urgent_matters_and_other_channels_are_resent_at_once_even_at_night(store, changes):
    notification = settled(store, **changes)
    assert resend(store, notification, NIGHT)["status"] == delivery.PENDING
