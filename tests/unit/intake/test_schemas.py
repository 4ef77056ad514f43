import pytest
from marshmallow import ValidationError

from services.intake.schemas import HttpRequestSchema, InboundRequestSchema

VALID_HTTP = {"channel": "wechat_group", "text": "南湖花园二区的路灯因为海葵台风受损"}
VALID_INBOUND = {"source": "hotline12345", "submitted_at": "2026-11-28T09:30:00+08:00", "text": "停水了"}


@pytest.mark.parametrize(
    "extra",
    [
        {},
        {"reporter": {"name": "张水如", "phone": "13812345678"}},
        {"reporter": {"phone": "+86 13812345678"}},
        {"reporter": {"phone": "0591-24567890"}},
        {"location": {"lon": 118.94, "lat": 25.87}},
        {"media": ["https://example.org/lamp.jpg"]},
        {"submitted_at": "2026-11-28T09:30:00+08:00", "source": "wechat"},
        {"text": "灯" * 5000},
    ],
)
def test_valid_http_requests_load(extra):
    loaded = HttpRequestSchema().load({**VALID_HTTP, **extra})
    assert loaded["text"] == {**VALID_HTTP, **extra}["text"]


@pytest.mark.parametrize(
    "change, field",
    [
        ({"text": None}, "text"),
        ({"text": " \n\t"}, "text"),
        ({"text": "灯" * 5001}, "text"),
        ({"channel": "carrier_pigeon"}, "channel"),
        ({"location": {"lon": 118.9}}, "location"),
        ({"location": {"lon": float("nan"), "lat": 25}}, "location"),
        ({"reporter": {"phone": "23812345678"}}, "reporter"),
        ({"reporter": {"name": "名" * 51}}, "reporter"),
        ({"media": ["ftp://example.org/x"]}, "media"),
        ({"media": ["https://e.org/%d" % i for i in range(21)]}, "media"),
        ({"source": "Hot Line"}, "source"),
        ({"grid_id": ""}, "grid_id"),
        ({"nickname": "x"}, "nickname"),
    ],
)
def test_invalid_http_request_names_the_field(change, field):
    body = {**VALID_HTTP, **change}
    with pytest.raises(ValidationError) as raised:
        HttpRequestSchema().load({k: v for k, v in body.items() if v is not None})
    assert field in raised.value.messages


def test_inbound_requires_source_and_zoned_submission_time():
    with pytest.raises(ValidationError) as raised:
        InboundRequestSchema().load({"text": "停水了", "submitted_at": "2026-11-28T09:30:00"})
    assert set(raised.value.messages) == {"source", "submitted_at"}


def test_inbound_has_no_channel_field():
    with pytest.raises(ValidationError) as raised:
        InboundRequestSchema().load({**VALID_INBOUND, "channel": "web"})
    assert "channel" in raised.value.messages


def test_inbound_submission_time_keeps_its_zone():
    loaded = InboundRequestSchema().load(VALID_INBOUND)
    assert loaded["submitted_at"].utcoffset().total_seconds() == 8 * 3600
