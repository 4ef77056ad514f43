from datetime import datetime, timezone

import pytest
from marshmallow import ValidationError

from wangge import events

AT = datetime(2026, 11, 28, 9, 30, tzinfo=timezone.utc)


def case_change(**overrides):
    data = {"case_id": "C-1", "request_id": "r-1", "tracking_no": "YT-20261128-000001",
            "status": "assigned", "previous_status": "received", "at": AT}
    data.update(overrides)
    return data


def test_event_round_trips_through_its_envelope():
    wire = events.build_event(events.CASE_STATUS_CHANGED, case_change(), occurred_at=AT)
    assert set(wire) == {"event_id", "event_type", "occurred_at", "schema_version", "data"}
    assert wire["data"]["at"] == "2026-11-28T09:30:00+00:00"
    read = events.read_event(events.CASE_STATUS_CHANGED, wire)
    assert read["data"]["at"] == AT
    assert read["event_id"] == wire["event_id"]


def test_producer_cannot_build_an_event_that_breaks_the_contract():
    with pytest.raises(ValidationError):
        events.build_event(events.CASE_STATUS_CHANGED, case_change(status="teleported"))


def test_consumer_error_names_the_field_inside_data():
    wire = events.build_event(events.CASE_STATUS_CHANGED, case_change())
    del wire["data"]["tracking_no"]
    with pytest.raises(ValidationError) as raised:
        events.read_event(events.CASE_STATUS_CHANGED, wire)
    assert raised.value.messages == {"data": {"tracking_no": ["Missing data for required field."]}}


def test_event_of_another_type_is_refused():
    wire = events.build_event(events.CASE_STATUS_CHANGED, case_change())
    with pytest.raises(ValidationError) as raised:
        events.read_event(events.REQUEST_RECEIVED, wire)
    assert "event_type" in raised.value.messages


def test_newer_producers_may_add_fields():
    wire = events.build_event(events.CASE_STATUS_CHANGED, case_change())
    wire["trace_id"] = "abc"
    wire["data"]["sla_level"] = "town"
    assert events.read_event(events.CASE_STATUS_CHANGED, wire)["data"]["sla_level"] == "town"
