"""Tracking numbers residents can read out on the phone: ``YT-20261128-000123``."""
from zoneinfo import ZoneInfo


def tracking_day(now, timezone_name):
    """The local calendar day (county time) a request was received on, as YYYYMMDD."""
    return now.astimezone(ZoneInfo(timezone_name)).strftime("%Y%m%d")


def format_tracking_no(prefix, day, sequence):
    return f"{prefix}-{day}-{sequence:06d}"


def counter_key(prefix, day):
    return f"tracking:{prefix}:{day}"

