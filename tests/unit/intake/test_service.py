"""The service's entrypoints with their dependencies replaced (nameko's worker_factory)."""
import pytest
from marshmallow import ValidationError
from nameko.testing.services import worker_factory

from services.intake.service import IntakeService, UnknownRequest
from wangge import events


def test_inbound_message_that_fails_validation_stores_nothing():
    service = worker_factory(IntakeService)
    with pytest.raises(ValidationError) as raised:
        service.receive_inbound({"message_id": "m-1", "routing_key": "request.x", "payload": {"source": "x", "text": ""}})
    assert {"text", "submitted_at"} <= set(raised.value.messages)
    service.store.insert_request.assert_not_called()
    service.dispatch.assert_not_called()


def test_case_event_for_an_unknown_request_raises_so_it_is_retried():
    service = worker_factory(IntakeService)
    service.store.apply_case_status.return_value = False
    event = events.build_event(events.CASE_STATUS_CHANGED, {
        "case_id": "C-1", "request_id": "r", "tracking_no": "YT-20261128-000404",
        "status": "assigned", "at": events.utcnow(),
    })
    with pytest.raises(UnknownRequest, match="YT-20261128-000404"):
        service.track_case_status(event)
