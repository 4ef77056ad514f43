"""Filing and reading requests over HTTP against a running intake process."""
import re
import uuid

import pytest
import requests

from services.intake.tracking import CROCKFORD_ALPHABET
from tests.support.polling import eventually

MIB = 1024 * 1024
TRACKING_NO = re.compile(r"^YT-\d{8}-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}$")
INTEGRATOR = "integrator-hotline12345"
# Crockford's digits as Python's int(…, 32) reads them
BASE32_DIGITS = str.maketrans(CROCKFORD_ALPHABET, "0123456789abcdefghijklmnopqrstuv")


def file_request(intake, body, session=None, **kwargs):
    return (session or requests).post(intake.url("/api/v1/requests"), json=body, timeout=10, **kwargs)


def read_back(intake, tracking_no, session=None):
    return (session or requests).get(intake.url(f"/api/v1/requests/{tracking_no}"), timeout=10)


def look_up(intake, session, source, external_ref):
    return session.get(intake.url("/api/v1/requests"), params={"source": source, "external_ref": external_ref}, timeout=10)


def test_request_filed_over_http_reads_back_publicly_with_tracking_number_and_history(intake):
    body = {
        "channel": "wechat_group",
        "text": "我是张水如，南湖花园二区的路灯因为海葵台风受损，请打13812345678联系我。",
        "wechat_group_id": "wx-nanmen-02",
        "address": "樟城镇南门社区南湖花园二区",
        "reporter": {"name": "张水如", "phone": "13812345678"},
        "location": {"lon": 118.94, "lat": 25.87},
    }
    created = file_request(intake, body)
    assert created.status_code == 201, created.text
    tracking_no = created.json()["tracking_no"]
    assert TRACKING_NO.match(tracking_no), tracking_no

    found = read_back(intake, tracking_no)
    assert found.status_code == 200
    view = found.json()
    assert view["tracking_no"] == tracking_no
    assert (view["status"], view["status_words"]) == ("received", "已受理")
    assert view["grid_name"] is None and view["category"] is None
    assert [(entry["status"], entry["words"]) for entry in view["history"]] == [("received", "已受理")]
    # the resident's words with the phone number and the reporter's name masked; never the reporter, address or place
    assert view["text"] == "我是张**，南湖花园二区的路灯因为海葵台风受损，请打138****5678联系我。"
    for private in ("reporter", "address", "location", "wechat_group_id", "grid_id", "case_id", "request_id", "source"):
        assert private not in view


def test_the_command_centre_reads_a_request_in_full(intake):
    body = {"channel": "hotline", "text": "请打13812345678联系我", "address": "南湖花园二区",
            "reporter": {"name": "张水如", "phone": "13812345678"}, "location": {"lon": 118.94, "lat": 25.87}}
    tracking_no = file_request(intake, body).json()["tracking_no"]
    view = read_back(intake, tracking_no, intake.as_user("county-center")).json()
    assert view["reporter"] == body["reporter"] and view["text"] == body["text"]
    assert (view["address"], view["location"], view["source"]) == (body["address"], body["location"], "hotline")


def test_a_grid_worker_reads_the_public_view(intake):
    tracking_no = file_request(intake, {"channel": "web", "text": "路灯坏了", "reporter": {"name": "张水如"}}).json()["tracking_no"]
    assert "reporter" not in read_back(intake, tracking_no, intake.as_user("w-zc-nanmen-02-1")).json()


def test_a_tracking_number_reads_back_however_it_was_typed(intake):
    tracking_no = file_request(intake, {"channel": "hotline", "text": "楼道灯不亮"}).json()["tracking_no"]
    typed = f"{tracking_no[:12].lower()}{tracking_no[12:].replace('-', '').lower()}"  # yt-20261129-7kq4m9xd
    assert read_back(intake, typed).json()["tracking_no"] == tracking_no


def test_tracking_numbers_are_unique_and_do_not_follow_each_other(intake):
    numbers = [file_request(intake, {"channel": "web", "text": f"第{i}件事"}).json()["tracking_no"] for i in range(5)]
    assert len(set(numbers)) == 5
    assert all(TRACKING_NO.match(number) for number in numbers)
    # the random parts: knowing one number tells nothing about the next
    random_parts = sorted(int(number[12:].replace("-", "").translate(BASE32_DIGITS), 32) for number in numbers)
    assert min(later - earlier for earlier, later in zip(random_parts, random_parts[1:])) > 1000


def test_same_idempotency_key_files_once(intake):
    key = uuid.uuid4().hex
    first = file_request(intake, {"channel": "hotline", "text": "楼道积水"}, headers={"Idempotency-Key": key})
    again = file_request(intake, {"channel": "hotline", "text": "楼道积水"}, headers={"Idempotency-Key": key})
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["tracking_no"] == again.json()["tracking_no"]


def test_the_same_idempotency_key_from_different_senders_files_a_request_for_each(intake):
    key = uuid.uuid4().hex
    senders = [None, intake.as_user(INTEGRATOR), intake.as_user("county-center"), intake.as_user("w-zc-nanmen-02-1")]
    first = [file_request(intake, {"channel": "hotline", "text": "楼道积水"}, session, headers={"Idempotency-Key": key})
             for session in senders]
    assert [answer.status_code for answer in first] == [201] * 4, [answer.text for answer in first]
    assert len({answer.json()["tracking_no"] for answer in first}) == 4
    # and each sender's repeat finds its own
    again = [file_request(intake, {"channel": "hotline", "text": "楼道积水"}, session, headers={"Idempotency-Key": key})
             for session in senders]
    assert [answer.status_code for answer in again] == [200] * 4
    assert [answer.json()["tracking_no"] for answer in again] == [answer.json()["tracking_no"] for answer in first]


def test_an_integrators_filing_is_bound_to_its_source(intake):
    integrator = intake.as_user(INTEGRATOR)
    ref = uuid.uuid4().hex
    filed = file_request(intake, {"channel": "hotline", "text": "停水了", "external_ref": ref}, integrator)
    assert filed.status_code == 201, filed.text
    [found] = look_up(intake, integrator, "hotline12345", ref).json()["items"]
    assert found["source"] == "hotline12345"


@pytest.mark.parametrize("sender", [INTEGRATOR, None])
def test_filing_for_another_system_is_403_naming_source(intake, sender):
    ref = uuid.uuid4().hex
    session = intake.as_user(sender) if sender else None
    refused = file_request(intake, {"channel": "hotline", "text": "停水了", "source": "wechat", "external_ref": ref}, session)
    assert refused.status_code == 403, refused.text
    assert "source" in refused.json()["fields"]
    assert look_up(intake, intake.as_user("county-center"), "wechat", ref).json()["items"] == []


def test_unknown_tracking_number_is_404_json(intake):
    response = requests.get(intake.url("/api/v1/requests/YT-19990101-999999"), timeout=10)
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


def test_lookup_without_external_ref_names_the_missing_parameter(intake):
    response = intake.as_user(INTEGRATOR).get(intake.url("/api/v1/requests"), params={"source": "hotline12345"}, timeout=10)
    assert response.status_code == 400
    assert "external_ref" in response.json()["fields"]


def test_an_integrator_cannot_look_up_another_source(intake):
    response = look_up(intake, intake.as_user(INTEGRATOR), "web", "anything")
    assert response.status_code == 403, response.text
    assert "source" in response.json()["fields"]


def test_the_command_centre_looks_up_any_source_in_full(intake):
    ref = uuid.uuid4().hex
    file_request(intake, {"channel": "web", "text": "路灯坏了", "external_ref": ref, "reporter": {"name": "张水如"}})
    [found] = look_up(intake, intake.as_user("county-center"), "web", ref).json()["items"]
    assert found["reporter"] == {"name": "张水如"}


GOOD = {"channel": "web", "text": "路灯坏了"}


@pytest.mark.parametrize(
    "body, field",
    [
        ({"channel": "web"}, "text"),
        ({"channel": "web", "text": ""}, "text"),
        ({"channel": "web", "text": "   "}, "text"),
        ({"channel": "web", "text": "灯" * 5001}, "text"),
        ({"channel": "web", "text": 42}, "text"),
        ({**GOOD, "media": "http://x"}, "media"),
        ({**GOOD, "location": {"lon": 181, "lat": 25}}, "location"),
        ({**GOOD, "location": {"lon": 118, "lat": -91}}, "location"),
        ({**GOOD, "location": {"lon": "east", "lat": 25}}, "location"),
        ({**GOOD, "channel": "fax"}, "channel"),
        ({"text": "路灯坏了"}, "channel"),
        ({**GOOD, "reporter": {"phone": "12345"}}, "reporter"),
        ({**GOOD, "reporter": {"phone": "1381234567a"}}, "reporter"),
        ({**GOOD, "submitted_at": "2026-11-28T09:30:00"}, "submitted_at"),
        ({**GOOD, "colour": "red"}, "colour"),
    ],
)
def test_bad_field_is_400_naming_the_field(intake, body, field):
    response = file_request(intake, body)
    assert response.status_code == 400, response.text
    assert field in response.json()["fields"]


@pytest.mark.parametrize(
    "data, headers",
    [
        (b"{not json", {"Content-Type": "application/json"}),
        (b"\xff\xfe\x00", {"Content-Type": "application/json"}),
        (b'["a", "list"]', {"Content-Type": "application/json"}),
        (b"{" + b" " * (MIB + 10) + b"}", {"Content-Type": "application/json"}),
    ],
    ids=["not-json", "not-utf8", "not-an-object", "over-1-MiB"],
)
def test_unreadable_body_is_400_naming_the_body(intake, data, headers):
    response = requests.post(intake.url("/api/v1/requests"), data=data, headers=headers, timeout=30)
    assert response.status_code == 400, response.text
    assert "body" in response.json()["fields"]


def test_rejected_requests_leave_nothing_behind(intake):
    ref = uuid.uuid4().hex
    assert file_request(intake, {"channel": "fax", "text": "x", "external_ref": ref, "source": "web"}).status_code == 400
    assert look_up(intake, intake.as_user("county-center"), "web", ref).json()["items"] == []


def test_metrics_count_requests_by_channel_and_outcome(intake):
    def accepted_visits():
        text = requests.get(intake.url("/metrics"), timeout=10).text
        for line in text.splitlines():
            if line.startswith('wangge_intake_requests_total{channel="visit",outcome="accepted"}'):
                return float(line.split()[-1])
        return 0.0

    before = accepted_visits()
    file_request(intake, {"channel": "visit", "text": "入户走访：独居老人需要申请补助"})
    assert accepted_visits() == before + 1


def test_every_filed_request_enters_the_sentiment_log(intake):
    tracking_no = file_request(intake, {"channel": "visit", "text": "汤洋村独居老人鲍老伯生活困难"}).json()["tracking_no"]

    def logged():
        log = intake.as_user("county-center").get(intake.url("/api/v1/sentiment-log"), params={"limit": 500}, timeout=10).json()["items"]
        return [entry for entry in log if entry["tracking_no"] == tracking_no]

    # the request is logged as it is announced, beside the answer to its sender, not before
    [entry] = eventually(logged)
    assert entry["kind"] == "request_received" and entry["summary"].startswith("汤洋村")


def test_sentiment_log_query_is_validated(intake):
    response = intake.as_user("county-center").get(intake.url("/api/v1/sentiment-log"), params={"limit": 0}, timeout=10)
    assert response.status_code == 400 and "limit" in response.json()["fields"]
