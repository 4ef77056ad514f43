from datetime import datetime, timezone

import pytest

from services.intake.tracking import format_tracking_no, looks_like_tracking_no, tracking_day


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
    number = format_tracking_no("YT", "20261128", 123)
    assert number == "YT-20261128-000123"
    assert looks_like_tracking_no(number)


def test_sequence_beyond_six_digits_still_forms_a_valid_number():
    assert looks_like_tracking_no(format_tracking_no("YT", "20261128", 1_234_567))
