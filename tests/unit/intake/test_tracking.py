import re
from datetime import datetime, timezone

import pytest

from services.intake.tracking import CROCKFORD_ALPHABET, canonical_tracking_no, new_tracking_no, tracking_day

NOW = datetime(2026, 11, 28, 2, 0, tzinfo=timezone.utc)
FORMAT = re.compile(r"^YT-20261128-([0-9A-HJKMNP-TV-Z]{4})-([0-9A-HJKMNP-TV-Z]{4})$")


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


def test_tracking_number_is_prefix_day_and_two_groups_of_four_crockford_characters():
    assert FORMAT.match(new_tracking_no("YT", NOW, "Asia/Shanghai"))


def as_number(tracking_no):
    value = 0
    for char in "".join(FORMAT.match(tracking_no).groups()):
        value = value * 32 + CROCKFORD_ALPHABET.index(char)
    return value


def test_tracking_numbers_do_not_follow_each_other():
    numbers = [as_number(new_tracking_no("YT", NOW, "Asia/Shanghai")) for _ in range(200)]
    # with 40 random bits, two of 200 numbers within a thousand of each other is a one in a million chance;
    # a sequence, or anything counting up, has every one of them next to another
    nearest = min(abs(a - b) for i, a in enumerate(numbers) for b in numbers[i + 1:])
    assert nearest > 1000


@pytest.mark.parametrize(
    "typed",
    ["YT-20261128-70Q4-M9X1", "yt-20261128-70q4-m9x1", "YT-20261128-70Q4M9X1", " YT-20261128-70Q4-M9X1 ",
     "YT-20261128-7OQ4-M9XL", "yt-20261128-7oq4-m9xi"],
)
def test_a_tracking_number_is_found_however_it_was_typed_or_read_out(typed):
    assert canonical_tracking_no(typed) == "YT-20261128-70Q4-M9X1"


def test_anything_else_is_left_as_it_is():
    assert canonical_tracking_no("YT-20261128-000123") == "YT-20261128-000123"
