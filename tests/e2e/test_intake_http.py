"""Filing and reading requests over HTTP against a running intake process."""
import uuid

import pytest
import requests

MIB = 1024 * 1024


def file_request(intake, body, **kwargs):
    return requests.post(intake.url("/api/v1/requests"), json=body, timeout=10, **kwargs)


def test_request_filed_over_http_reads_back_with_tracking_number_and_history(intake):
    body = {
        "channel": "wechat_group",
        "text": "南湖花园二区的路灯因为海葵台风受损，希望能够帮忙解决一下。",
        "wechat_group_id": "wx-nanmen-02",
        "reporter": {"name": "张水如", "phone": "13812345678"},
        "location": {"lon": 118.94, "lat": 25.87},
    }
    created = file_request(intake, body)
    assert created.status_code == 201, created.text
    tracking_no = created.json()["tracking_no"]
    assert tracking_no.startswith("YT-") and len(tracking_no.split("-")[2]) == 6

    found = requests.get(intake.url(f"/api/v1/requests/{tracking_no}"), timeout=10)
    assert found.status_code == 200
    view = found.json()
    assert view["tracking_no"] == tracking_no
    assert view["text"] == body["text"]
    assert view["status"] == "received"
    assert view["grid_id"] is None and view["category"] is None and view["case_id"] is None
    assert [entry["status"] for entry in view["history"]] == ["received"]
    # the public view never shows the reporter in full
    assert view["reporter"] == {"name": "张**", "phone": "138****5678"}


def test_tracking_numbers_are_unique_and_increase(intake):
    numbers = [file_request(intake, {"channel": "web", "text": f"第{i}件事"}).json()["tracking_no"] for i in range(5)]
    assert len(set(numbers)) == 5
    assert numbers == sorted(numbers)


def test_same_idempotency_key_files_once(intake):
    key = uuid.uuid4().hex
    first = file_request(intake, {"channel": "hotline", "text": "楼道积水"}, headers={"Idempotency-Key": key})
    again = file_request(intake, {"channel": "hotline", "text": "楼道积水"}, headers={"Idempotency-Key": key})
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["tracking_no"] == again.json()["tracking_no"]


def test_unknown_tracking_number_is_404_json(intake):
    response = requests.get(intake.url("/api/v1/requests/YT-19990101-999999"), timeout=10)
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


def test_lookup_without_external_ref_names_the_missing_parameter(intake):
    response = requests.get(intake.url("/api/v1/requests"), params={"source": "hotline12345"}, timeout=10)
    assert response.status_code == 400
    assert "external_ref" in response.json()["fields"]


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
    found = requests.get(intake.url("/api/v1/requests"), params={"source": "web", "external_ref": ref}, timeout=10)
    assert found.json()["items"] == []


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
    log = requests.get(intake.url("/api/v1/sentiment-log"), params={"limit": 500}, timeout=10).json()["items"]
    mine = [entry for entry in log if entry["tracking_no"] == tracking_no]
    assert len(mine) == 1
    assert mine[0]["kind"] == "request_received" and mine[0]["summary"].startswith("汤洋村")


def test_sentiment_log_query_is_validated(intake):
    response = requests.get(intake.url("/api/v1/sentiment-log"), params={"limit": 0}, timeout=10)
    assert response.status_code == 400 and "limit" in response.json()["fields"]
