from datetime import datetime, timezone

from services.intake.views import public_view, full_view, redacted_text

AT = datetime(2026, 11, 28, 2, 0, tzinfo=timezone.utc)


def request(**overrides):
    return {
        "_id": "r-1", "tracking_no": "YT-20261128-7KQ4-M9XD", "channel": "hotline", "source": "hotline12345",
        "submitted_at": AT, "received_at": AT, "status": "assigned", "case_id": "C-1",
        "text": "我是鲍老伯，电话13912345678，座机0591-24567890，鲍老伯家门口的路灯坏了",
        "reporter": {"name": "鲍老伯", "phone": "13912345678"}, "address": "汤洋村3号",
        "location": {"lon": 118.94, "lat": 25.87}, "media": ["https://example.org/lamp.jpg"],
        "grid_id": "YT-ZC-NM-02", "grid_name": "南门社区02网格", "category": "street_lighting", "category_name": "路灯",
        "external_ref": "HL-1", "idempotency_key": "http:public:k", "announce": {"state": "announced"},
        "history": [
            {"status": "received", "at": AT, "note": "受理 · received via hotline", "event_id": None},
            {"status": "assigned", "at": AT, "note": "分派给网格员余雪华 13800000021", "actor": "routing", "event_id": "e-1"},
        ],
        **overrides,
    }


def test_public_view_says_where_the_request_stands_in_plain_words():
    view = public_view(request())
    assert set(view) == {"tracking_no", "status", "status_words", "received_at", "category", "category_name", "grid_name",
                         "text", "result", "history"}
    assert view["result"] is None
    assert (view["status"], view["status_words"], view["grid_name"]) == ("assigned", "已分派到网格办理", "南门社区02网格")
    assert view["history"] == [{"status": "received", "at": AT.isoformat(), "words": "已受理"},
                               {"status": "assigned", "at": AT.isoformat(), "words": "已分派到网格办理"}]


def test_public_view_masks_phone_numbers_and_the_reporters_name_in_the_text():
    text = public_view(request())["text"]
    assert "13912345678" not in text and "24567890" not in text and "鲍老伯" not in text
    assert text.count("鲍**") == 2 and "139****5678" in text


def test_public_view_never_shows_the_reporter_the_address_the_location_or_the_notes():
    view = str(public_view(request()))
    for private in ("鲍老伯", "13912345678", "汤洋村3号", "118.94", "lamp.jpg", "余雪华", "HL-1", "hotline12345"):
        assert private not in view


def test_public_view_gives_routings_result_once_resolved_masked_for_this_reporter_too():
    # routing masks every reporter of the case; this request's reporter is masked here again
    view = public_view(request(status="resolved", result="已更换灯泡，鲍老伯可拨139****5678再联系，林**也已告知"))
    assert view["result"] == "已更换灯泡，鲍**可拨139****5678再联系，林**也已告知"
    assert public_view(request(status="closed", result="已更换灯泡"))["result"] == "已更换灯泡"
    assert full_view(request(status="closed", result="已更换灯泡"))["result"] == "已更换灯泡"


def test_public_view_has_no_result_while_open_or_after_a_reopening():
    assert public_view(request(status="reopened", result="已更换灯泡"))["result"] is None
    assert public_view(request(status="assigned", result=None))["result"] is None
    assert public_view(request(status="resolved"))["result"] is None  # from routing before it sent one


def test_a_one_character_name_is_not_masked_all_over_the_text():
    assert redacted_text("王家的路灯坏了", {"name": "王"}) == "王家的路灯坏了"


def test_full_view_has_everything_as_filed():
    view = full_view(request())
    assert view["reporter"] == {"name": "鲍老伯", "phone": "13912345678"}
    assert view["text"] == request()["text"]
    assert (view["address"], view["case_id"], view["grid_id"], view["source"], view["external_ref"]) == (
        "汤洋村3号", "C-1", "YT-ZC-NM-02", "hotline12345", "HL-1")
    assert view["history"][1]["note"] == "分派给网格员余雪华 13800000021"
    assert "announce" not in view and "idempotency_key" not in view
