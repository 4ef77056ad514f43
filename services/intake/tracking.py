"""Tracking numbers residents can read out on the phone: ``YT-20261129-7KQ4-M9XD``.

Prefix, the county-local day of receipt, then 8 random characters of Crockford's
base32 (40 bits from the operating system's cryptographic source) in two groups
of four. The number is the key to a request's public view, so it must not be
guessable from another one: a sequence would let anyone walk through every
request. Crockford's alphabet has no I, L, O or U, so a number read aloud or
typed from a note cannot be misread; lookups forgive lower case and the look-alikes.
"""
import re
import secrets
from zoneinfo import ZoneInfo

CROCKFORD_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
RANDOM_CHARS = 8
GROUP_CHARS = 4
# what a reader may have written for a digit (Crockford's decoding rules)
LOOK_ALIKES = str.maketrans({"I": "1", "L": "1", "O": "0"})
TRACKING_NO = re.compile(r"^([A-Za-z]+)-(\d{8})-([0-9A-Za-z]{4})-?([0-9A-Za-z]{4})$")


def tracking_day(now, timezone_name):
    """The local calendar day (county time) a request was received on, as YYYYMMDD."""
    return now.astimezone(ZoneInfo(timezone_name)).strftime("%Y%m%d")


def random_part():
    """``7KQ4-M9XD``: 40 bits, grouped in fours for reading aloud."""
    chars = "".join(secrets.choice(CROCKFORD_ALPHABET) for _ in range(RANDOM_CHARS))
    return f"{chars[:GROUP_CHARS]}-{chars[GROUP_CHARS:]}"


def new_tracking_no(prefix, now, timezone_name):
    return f"{prefix}-{tracking_day(now, timezone_name)}-{random_part()}"


def canonical_tracking_no(text):
    """A tracking number as a resident may type it (``yt-20261129-7kq4m9xd``, an O
    for a zero) in its stored form; anything else unchanged (it is simply not found)."""
    match = TRACKING_NO.match(text.strip())
    if match is None:
        return text
    prefix, day, first, second = match.groups()
    first, second = (group.upper().translate(LOOK_ALIKES) for group in (first, second))
    return f"{prefix.upper()}-{day}-{first}-{second}"
