"""What is due by a date field most documents leave null: read from the index's first date.
What the bound saves (SecantusDB reading every null on the way) is a matter of speed, measured
by the bench; here, that it leaves out nothing the unbounded range finds."""
from datetime import datetime, timedelta, timezone

import pytest
from pymongo import ASCENDING

from wangge.mongo import dated_until

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=timezone.utc)


@pytest.fixture
def dated(scratch_database):
    collection = scratch_database["dated"]
    collection.create_index([("due_at", ASCENDING)])
    collection.insert_many([
        {"_id": "null", "due_at": None},
        {"_id": "missing"},
        {"_id": "the first date", "due_at": datetime(1970, 1, 1, tzinfo=timezone.utc)},
        {"_id": "a minute before", "due_at": NOW - timedelta(minutes=1)},
        {"_id": "at the moment", "due_at": NOW},
        {"_id": "a minute after", "due_at": NOW + timedelta(minutes=1)},
    ])
    return collection


def found(collection, condition):
    return sorted(document["_id"] for document in collection.find({"due_at": condition}))


def test_dated_until_finds_every_date_on_or_before_the_moment_and_no_null_or_missing_date(dated):
    assert found(dated, dated_until(NOW)) == ["a minute before", "at the moment", "the first date"]
    # what the unbounded range finds: the bound leaves nothing out
    assert found(dated, dated_until(NOW)) == found(dated, {"$lte": NOW})


def test_dated_until_not_inclusive_finds_the_dates_before_the_moment(dated):
    assert found(dated, dated_until(NOW, inclusive=False)) == ["a minute before", "the first date"]
    assert found(dated, dated_until(NOW, inclusive=False)) == found(dated, {"$lt": NOW})
