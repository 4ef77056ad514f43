"""The service's entrypoints with their dependencies replaced (nameko's worker_factory)."""
import pytest
from marshmallow import ValidationError
from nameko.testing.services import worker_factory

from services.intake.open311 import Open311Error
from services.intake.service import IntakeService, UnknownRequest, new_source
from wangge import events
from wangge.config import load_service_config
from wangge.errors import ApiError


def test_inbound_message_that_fails_validation_stores_nothing():
    service = worker_factory(IntakeService)
    with pytest.raises(ValidationError) as raised:
        service.receive_inbound({"message_id": "m-1", "routing_key": "request.x", "payload": {"source": "x", "text": ""}})
    assert {"text", "submitted_at"} <= set(raised.value.messages)
    service.store.insert_request.assert_not_called()
    service.announcements.assert_not_called()


def test_case_event_for_an_unknown_request_raises_so_it_is_retried():
    service = worker_factory(IntakeService)
    service.store.request_status.return_value = None
    event = events.build_event(events.CASE_STATUS_CHANGED, {
        "case_id": "C-1", "request_id": "r", "tracking_no": "YT-20261128-000404",
        "status": "assigned", "at": events.utcnow(),
    })
    with pytest.raises(UnknownRequest, match="YT-20261128-000404"):
        service.track_case_status(event)


INBOUND = {"source": "wechat", "submitted_at": "2026-11-28T09:30:00+08:00", "text": "停水了"}


def test_inbound_message_whose_body_names_another_source_than_its_routing_key_is_refused_naming_source():
    service = worker_factory(IntakeService)
    with pytest.raises(ValidationError) as raised:
        service.receive_inbound({"message_id": "m-1", "routing_key": "request.hotline12345", "payload": INBOUND})
    assert set(raised.value.messages) == {"source"}
    service.store.insert_request.assert_not_called()


def test_inbound_message_ids_are_idempotency_keys_of_their_source_only():
    service = worker_factory(IntakeService, config=load_service_config("intake"))
    service.store.insert_request.return_value = None  # as for a message delivered before
    service.receive_inbound({"message_id": "m-1", "routing_key": "request.wechat", "payload": INBOUND})
    assert service.store.insert_request.call_args.args[0]["idempotency_key"] == "inbound:wechat:m-1"
    service.store.find_by_idempotency_key.assert_called_once_with("inbound:wechat:m-1")
    service.announcements.assert_not_called()  # nothing announced a second time


def test_a_new_request_is_announced_beside_the_answer():
    service = worker_factory(IntakeService, config=load_service_config("intake"))
    service.store.insert_request.side_effect = lambda document: document
    service.receive_inbound({"message_id": "m-2", "routing_key": "request.wechat", "payload": INBOUND})
    [(dispatch, request)] = [call.args for call in service.announcements.call_args_list]
    assert dispatch is service.dispatch and request["idempotency_key"] == "inbound:wechat:m-2"
    service.dispatch.assert_not_called()  # not before the answer


@pytest.mark.parametrize("channel", ["web", "hotline", "visit", "wechat_group", "external"])
def test_a_residents_channel_is_no_systems_source(channel):
    """Residents' own requests carry their channel as their source: a key for one would list them."""
    with pytest.raises(ApiError) as refused:
        new_source(channel)
    assert set(refused.value.fields) == {"source"}
    new_source("hotline12345")


def test_a_key_issued_for_a_channel_before_channels_were_refused_is_not_valid():
    service = worker_factory(IntakeService)
    service.store.source_of_open311_key.return_value = "web"
    with pytest.raises(Open311Error) as refused:
        service._open311_source("wg311_issued-before")
    assert refused.value.status == 403
    service.store.source_of_open311_key.return_value = "hotline12345"
    assert service._open311_source("wg311_a-systems") == "hotline12345"
