"""The resident's answer to the follow-up (回访) comes through a one-time link.

Each resolution issues a random token. Routing keeps only its digest, with an
expiry; the token itself travels once, in the ``follow_up_requested`` event to
the message that asks the resident (the event waits in the case's outbox until
the broker has taken it, and no longer). A newer resolution's token replaces the
older one; an answer uses the token up.
"""
import hashlib
import secrets
from dataclasses import dataclass

from wangge.errors import ApiError, NotFound

TOKEN_BYTES = 32


class FollowUpTokenUnknown(NotFound):
    """No follow-up waits under this token (never issued, or replaced by a newer one)."""


class FollowUpTokenRefused(ApiError):
    """The token was issued but no longer counts."""

    http_status = 403
    error_code = "follow_up_token_refused"


def digest(token):
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class IssuedToken:
    token: str  # for the resident's message only; never stored
    record: dict  # what the case keeps: digest, expires_at, used_at


def issue(now, valid_for):
    token = secrets.token_urlsafe(TOKEN_BYTES)
    return IssuedToken(token, {"digest": digest(token), "expires_at": now + valid_for, "used_at": None})


def check(record, token_digest, now):
    """The case's token ``record`` must be this token's, unused and unexpired."""
    if not record or not secrets.compare_digest(record["digest"], token_digest):
        raise FollowUpTokenUnknown("No follow-up is waiting under this link.")
    if record.get("used_at") is not None:
        raise FollowUpTokenRefused("This follow-up link has been answered already.", {"token": ["Used."]})
    if now >= record["expires_at"]:
        raise FollowUpTokenRefused("This follow-up link has expired.", {"token": ["Expired."]})
