from datetime import datetime, timezone

import pytest

from services.intake.tracking import format_tracking_no, tracking_day


@pytest.mark.parametrize(
    "utc, day",
    [
        (datetime(2026, 11, 28, 15, 59, tzinfo=timezone.utc), "20261128"),
        (datetime(2026, 11, 28, 16, 0, tzinfo=timezone.utc), "20261129"),  # midnight in Yongtai
        (datetime(2026, 12, 31, 16, 30, tzinfo=timezone.utc), "20270101"),
    ],
)
def test_tracking_day_is_the_county_local_day(utc, day):
    assert tracking_day(utc, "Asia/Shanghai") == day


def test_tracking_number_is_short_and_readable():
    assert format_tracking_no("YT", "20261128", 123) == "YT-20261128-000123"


def test_a_busy_day_beyond_six_digits_keeps_every_digit():
    assert format_tracking_no("YT", "20261128", 1_234_567) == "YT-20261128-1234567"
