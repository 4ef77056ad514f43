"""Tracking numbers residents can read out on the phone: ``YT-20261128-000123``."""
import re
from zoneinfo import ZoneInfo

TRACKING_NO_PATTERN = re.compile(r"^[A-Z]{1,6}-\d{8}-\d{6,}$")


def tracking_day(now, timezone_name):
    """The local calendar day (county time) a request was received on, as YYYYMMDD."""
    return now.astimezone(ZoneInfo(timezone_name)).strftime("%Y%m%d")


def format_tracking_no(prefix, day, sequence):
    return f"{prefix}-{day}-{sequence:06d}"


def counter_key(prefix, day):
    return f"tracking:{prefix}:{day}"


def looks_like_tracking_no(value):
    return bool(TRACKING_NO_PATTERN.match(value))
