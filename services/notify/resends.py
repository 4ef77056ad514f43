"""An operator's re-send of a notification. Nobody is to be flooded by repeated
clicks or a script: a recipient gets at most ``PER_RECIPIENT`` re-sends within
``WINDOW_MINUTES``, whoever asks. And a resident's text asked for at night waits
for the morning like any other (urgent matters excepted)."""
import math
from dataclasses import dataclass
from datetime import timedelta

from wangge.errors import ApiError

from services.notify import delivery


class TooManyResends(ApiError):
    http_status = 429
    error_code = "too_many_resends"


class StillSending(ApiError):
    http_status = 409
    error_code = "not_finished"


@dataclass(frozen=True)
class ResendLimit:
    per_recipient: int
    window: timedelta

    @classmethod
    def from_config(cls, settings):
        return cls(int(settings["PER_RECIPIENT"]), timedelta(minutes=float(settings["WINDOW_MINUTES"])))

    def refusal(self, recipient_key, earliest, now):
        """429 naming the limit, with ``Retry-After`` when the oldest re-send stops counting."""
        wait = max(1, math.ceil((earliest + self.window - now).total_seconds()))
        minutes = f"{self.window.total_seconds() / 60:g}"
        refused = TooManyResends(
            f"At most {self.per_recipient} re-sends to one recipient within {minutes} minutes; "
            f"{recipient_key} has had them. Try again in {wait} s.")
        refused.details = {"limit": {"per_recipient": self.per_recipient, "window_minutes": float(minutes)},
                           "recipient": recipient_key}
        refused.headers = {"Retry-After": str(wait)}
        return refused


def resend(store, limit, quiet_hours, notification, by, now):
    """Put a settled notification back to be sent by ``by``; returns it as stored now
    (``pending``, or ``held`` until quiet hours end)."""
    recipient = notification["recipient"]
    # counted first, checked after: of two re-sends racing for the last one, neither
    # slips past the limit (both may be refused, which is the safe side)
    noted = store.record_resend(recipient["key"], notification["_id"], by, now, now + limit.window)
    counted = store.resends_since(recipient["key"], now - limit.window)
    if len(counted) > limit.per_recipient:
        store.forget_resend(noted)
        raise limit.refusal(recipient["key"], counted[0], now)
    hold = delivery.held_until(recipient["role"], notification["channel"], notification.get("urgent", False), now, quiet_hours)
    if not store.reset_for_resend(notification["_id"], now, hold, by):
        store.forget_resend(noted)
        raise StillSending(f"The notification is {notification['status']}: it is still being delivered.")
    return store.get(notification["_id"])
