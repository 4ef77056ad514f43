from datetime import datetime, timezone

import pytest
import requests

from services.notify import delivery
from services.notify.channels import DeliveryFailed, check_http, signature
from services.notify.recipients import Recipient

QUIET = {"START": "22:00", "END": "07:00", "TIMEZONE": "Asia/Shanghai", "ROLES": ["resident", "member"]}
RESIDENT = Recipient("resident", "resident:YT-1", phone="13912340001")
WORKER = Recipient("worker", "w-1", phone="13800000001")


def utc(hour, minute=0, day=28):
    return datetime(2026, 11, day, hour, minute, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    "now, until",
    [
        (utc(13, 59), None),                    # 21:59 in the county
        (utc(14, 0), "2026-11-29T07:00:00+08:00"),  # 22:00
        (utc(18, 30), "2026-11-29T07:00:00+08:00"),  # 02:30 next day
        (utc(22, 59), "2026-11-29T07:00:00+08:00"),  # 06:59
        (utc(23, 0), None),                     # 07:00
    ],
)
def test_quiet_hours_cross_midnight_in_county_time(now, until):
    held = delivery.quiet_until(now, QUIET)
    assert (held and held.isoformat()) == until


def test_quiet_hours_within_one_day():
    window = {**QUIET, "START": "12:00", "END": "14:00"}
    assert delivery.quiet_until(utc(5), window) is not None      # 13:00
    assert delivery.quiet_until(utc(7), window) is None          # 15:00


@pytest.mark.parametrize(
    "recipient, channel, urgent, held",
    [(RESIDENT, "sms", False, True), (RESIDENT, "sms", True, False), (WORKER, "sms", False, False), (RESIDENT, "outbox", False, False)],
)
def test_only_residents_texts_wait_and_never_urgent_ones(recipient, channel, urgent, held):
    assert (delivery.held_until(recipient.role, channel, urgent, utc(16), QUIET) is not None) is held


def test_backoff_doubles_and_caps():
    settings = {"BACKOFF_SECONDS": 5, "MAX_BACKOFF_SECONDS": 30}
    assert [delivery.backoff(n, settings) for n in range(1, 6)] == [5, 10, 20, 30, 30]


def test_preferred_channel_wins_over_the_route():
    routes = {"worker": "wecom"}
    assert delivery.channel_for(WORKER, {"channel": "sms"}, routes) == "sms"
    assert delivery.channel_for(WORKER, {"channel": "pigeon"}, routes) == "wecom"
    assert delivery.channel_for(WORKER, None, routes) == "wecom"


def test_same_event_recipient_and_channel_give_the_same_id():
    assert delivery.notification_id("e1", "w-1", "sms") == delivery.notification_id("e1", "w-1", "sms")
    assert delivery.notification_id("e1", "w-1", "sms") != delivery.notification_id("e1", "w-1", "wecom")


def response(status):
    answer = requests.Response()
    answer.status_code = status
    answer._content = b"{}"
    return answer


@pytest.mark.parametrize("status, retriable", [(500, True), (503, True), (429, True), (400, False), (401, False), (404, False)])
def test_gateway_answers_decide_whether_to_retry(status, retriable):
    with pytest.raises(DeliveryFailed) as raised:
        check_http(response(status))
    assert raised.value.retriable is retriable


def test_webhook_signature_is_hmac_sha256_of_the_exact_body():
    # the published HMAC-SHA256 test vector
    assert signature("key", b"The quick brown fox jumps over the lazy dog") == (
        "sha256=f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8")
