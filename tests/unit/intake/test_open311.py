"""Open311 GeoReport v2 over intake: mapping the taxonomy and requests, the form and
the query, and rendering the same answers as JSON and XML."""
import io
import json
import uuid
import xml.etree.ElementTree as ElementTree
from datetime import datetime, timedelta, timezone

import pytest
from marshmallow import ValidationError
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from services.intake import open311
from services.intake.open311 import Open311Error
from services.intake.open311_schemas import Open311QuerySchema, Open311RequestFormSchema
from services.routing.taxonomy import load_taxonomy
from services.routing.views import taxonomy_view

AT = datetime(2026, 11, 28, 2, 0, tzinfo=timezone.utc)
ZONE = "Asia/Shanghai"


def routing_taxonomy():
    """The shipped taxonomy as routing's GET /api/v1/taxonomy would serve it with each
    subclass's keywords and SLA (the view's own fields, plus those two)."""
    taxonomy = load_taxonomy()
    view = json.loads(json.dumps(taxonomy_view(taxonomy), default=lambda value: vars(value)))
    for major in view["majors"]:
        for subclass in major["subclasses"]:
            subclass["keywords"] = list(taxonomy.subclasses[subclass["code"]].keywords)
            subclass["sla"] = vars(taxonomy.subclasses[subclass["code"]].sla)
    return view


@pytest.fixture(scope="module")
def services_by_code():
    return open311.catalogue(routing_taxonomy())


def request(**overrides):
    return {
        "_id": "r-1", "tracking_no": "YT-20261128-7KQ4-M9XD", "channel": "external", "source": "hotline12345",
        "received_at": AT, "status_at": AT + timedelta(hours=2), "status": "assigned", "category": "street_lighting",
        "subclass": "street_lighting", "subclass_name": "路灯照明", "grid_name": "南门社区02网格", "level": "grid",
        "text": "我是鲍老伯，电话13912345678，鲍老伯家门口的路灯坏了",
        "reporter": {"name": "鲍老伯", "phone": "13912345678"}, "address": "汤洋村3号",
        "location": {"lon": 118.94, "lat": 25.87}, "external_ref": "HL-1",
        **overrides,
    }


# -- services -----------------------------------------------------------------------------

def test_every_subclass_is_a_service_grouped_by_its_major_class(services_by_code):
    taxonomy = load_taxonomy()
    listed = open311.services(services_by_code)
    assert [service["service_code"] for service in listed] == list(taxonomy.subclasses)
    lighting = next(service for service in listed if service["service_code"] == "street_lighting")
    assert lighting["service_name"] == taxonomy.subclasses["street_lighting"].name
    assert lighting["group"] == taxonomy.majors["utilities"].name
    assert lighting["keywords"].split(", ") == list(taxonomy.subclasses["street_lighting"].keywords)
    assert (lighting["metadata"], lighting["type"]) == (True, "realtime")


def test_a_service_without_keywords_from_routing_says_none():
    taxonomy = {"majors": [{"code": "m", "name": "大类", "subclasses": [{"code": "s", "name": "小类", "description": "说明"}]}]}
    assert open311.services(open311.catalogue(taxonomy))[0]["keywords"] is None


def test_a_services_definition_names_the_grid_and_the_senders_reference(services_by_code):
    definition = open311.service_definition(services_by_code, "street_lighting")
    assert [attribute["code"] for attribute in definition["attributes"]] == ["grid_id", "external_ref"]
    assert not any(attribute["required"] for attribute in definition["attributes"])
    with pytest.raises(Open311Error) as unknown:
        open311.service_definition(services_by_code, "no_such_service")
    assert unknown.value.status == 404


def test_services_render_as_the_standards_xml(services_by_code):
    response = open311.answer("xml", "services", open311.services(services_by_code)[:2])
    assert response.content_type == "text/xml; charset=utf-8"
    root = ElementTree.fromstring(response.get_data())
    assert root.tag == "services"
    first = root.findall("service")[0]
    assert first.findtext("service_code") == "street_lighting"
    assert first.findtext("metadata") == "true"
    assert first.findtext("group") == load_taxonomy().majors["utilities"].name


def test_an_empty_value_is_an_empty_element_and_lists_repeat_their_items(services_by_code):
    definition = open311.service_definition(services_by_code, "street_lighting")
    root = ElementTree.fromstring(open311.answer("xml", "service_definition", {**definition, "note": None}).get_data())
    assert [element.findtext("code") for element in root.find("attributes").findall("attribute")] == ["grid_id", "external_ref"]
    assert root.find("note").text is None and list(root.find("note")) == []


def test_discovery_points_at_the_v2_endpoint_in_both_formats():
    document = open311.discovery("https://wangge.example.gov.cn/", "中心", "申请", "2026-11-29T00:00:00+08:00")
    [endpoint] = document["endpoints"]
    assert endpoint["url"] == "https://wangge.example.gov.cn/open311/v2"
    assert set(endpoint["formats"]) == {"application/json", "text/xml"}


# -- filing ---------------------------------------------------------------------------------

FORM = {"api_key": "k", "service_code": "street_lighting", "description": "南湖花园二区的路灯坏了"}


def test_a_form_becomes_the_fields_every_channel_files(services_by_code):
    params = Open311RequestFormSchema().load({
        **FORM, "lat": "25.87", "long": "118.94", "address_string": "南湖花园二区", "first_name": "先生", "last_name": "林",
        "phone": "13800000001", "media_url": "https://example.org/lamp.jpg", "email": "lin@example.org",
        "attribute[grid_id]": "YT-ZC-NANMEN-02", "attribute[external_ref]": "HL-9"})
    fields = open311.request_fields(params, services_by_code)
    assert fields == {"text": FORM["description"], "category": "street_lighting", "address": "南湖花园二区",
                      "location": {"lat": 25.87, "lon": 118.94}, "reporter": {"name": "林先生", "phone": "13800000001"},
                      "media": ["https://example.org/lamp.jpg"], "grid_id": "YT-ZC-NANMEN-02", "external_ref": "HL-9"}


def test_latin_names_keep_their_order_with_a_space():
    assert open311.reporter_name("John", "Smith") == "John Smith"
    assert open311.reporter_name(None, "林") == "林"


def test_errors_name_the_open311_parameters_they_came_from(services_by_code):
    params = Open311RequestFormSchema().load({**FORM, "description": "   "})
    with pytest.raises(ValidationError) as blank:
        open311.request_fields(params, services_by_code)
    assert set(blank.value.messages) == {"description"}
    with pytest.raises(ValidationError) as phone:
        Open311RequestFormSchema().load({**FORM, "phone": "12345"})
    assert set(phone.value.messages) == {"phone"}
    with pytest.raises(Open311Error) as unknown:
        open311.request_fields(Open311RequestFormSchema().load({**FORM, "service_code": "nope"}), services_by_code)
    assert unknown.value.status == 400 and unknown.value.descriptions[0].startswith("service_code:")


def test_intakes_own_rules_name_the_parameter_too(services_by_code):
    too_long = Open311RequestFormSchema().load({**FORM, "attribute[grid_id]": "G" * 64, "first_name": "名" * 25, "last_name": "姓" * 25,
                                                "media_url": "https://example.org/a.jpg"})
    assert open311.request_fields(too_long, services_by_code)["reporter"]["name"] == "姓" * 25 + "名" * 25
    assert open311.open311_messages({"location": {"lat": ["x"]}, "reporter": {"phone": ["y"]}, "media": {0: ["z"]}, "text": ["w"]}) == {
        "lat": ["x"], "phone": ["y"], "media_url": ["z"], "description": ["w"]}


def test_the_form_takes_lat_and_long_together_and_only_known_attributes():
    with pytest.raises(ValidationError) as alone:
        Open311RequestFormSchema().load({**FORM, "lat": "25.87"})
    assert set(alone.value.messages) == {"long"}
    with pytest.raises(ValidationError) as unknown:
        Open311RequestFormSchema().load({**FORM, "attribute[colour]": "red"})
    assert set(unknown.value.messages) == {"attribute[colour]"}
    with pytest.raises(ValidationError) as missing:
        Open311RequestFormSchema().load({"service_code": "street_lighting", "description": "路灯坏了"})
    assert set(missing.value.messages) == {"api_key"}


def test_a_retry_is_known_by_its_key_else_its_reference_and_only_from_the_same_system():
    assert open311.idempotency_key("a", "k1", "ref") == "open311:a:key:k1"
    assert open311.idempotency_key("a", None, "ref") == "open311:a:ref:ref"
    assert open311.idempotency_key("b", None, "ref") != open311.idempotency_key("a", None, "ref")
    assert open311.idempotency_key("a", None, None) is None


def test_keys_are_random_and_kept_as_their_digest():
    first, second = open311.new_api_key(), open311.new_api_key()
    assert first != second and len(first) > 40
    assert open311.key_digest(first) == open311.key_digest(first) != open311.key_digest(second)
    assert first not in open311.key_digest(first)


# -- reading requests --------------------------------------------------------------------------

def test_a_request_reads_as_open311_without_personal_data(services_by_code):
    entry = open311.request_entry(request(), services_by_code, in_full=False, timezone_name=ZONE)
    assert entry["service_request_id"] == "YT-20261128-7KQ4-M9XD"
    assert (entry["status"], entry["status_notes"]) == ("open", "已分派到网格办理")
    assert (entry["service_code"], entry["service_name"], entry["agency_responsible"]) == ("street_lighting", "路灯照明", "南门社区02网格")
    assert entry["requested_datetime"] == "2026-11-28T10:00:00+08:00"
    assert entry["updated_datetime"] == "2026-11-28T12:00:00+08:00"
    hours = load_taxonomy().subclasses["street_lighting"].sla.resolution_hours
    assert datetime.fromisoformat(entry["expected_datetime"]) == AT + timedelta(hours=hours)
    rendered = json.dumps(entry, ensure_ascii=False)
    assert "13912345678" not in rendered and "鲍老伯" not in rendered and "汤洋村" not in rendered
    assert "address" not in entry and "lat" not in entry and "long" not in entry
    assert "139****5678" in entry["description"]


def test_the_deadline_routing_holds_the_case_to_is_the_expected_time(services_by_code):
    escalated_deadline = AT + timedelta(days=5)  # a town's, after escalation: not the grid's SLA
    entry = open311.request_entry(request(resolution_due_at=escalated_deadline), services_by_code, in_full=False, timezone_name=ZONE)
    assert datetime.fromisoformat(entry["expected_datetime"]) == escalated_deadline


def test_the_system_that_filed_it_also_reads_the_address_and_place(services_by_code):
    entry = open311.request_entry(request(), services_by_code, in_full=True, timezone_name=ZONE)
    assert (entry["address"], entry["lat"], entry["long"]) == ("汤洋村3号", 25.87, 118.94)
    rendered = json.dumps(entry, ensure_ascii=False)
    assert "13912345678" not in rendered and "鲍老伯" not in rendered


@pytest.mark.parametrize(("status", "expected"), [
    ("received", "open"), ("assigned", "open"), ("in_progress", "open"), ("escalated", "open"), ("reopened", "open"),
    ("returned", "open"), ("resolved", "closed"), ("closed", "closed"), ("rejected", "closed"), ("merged", "closed"),
])
def test_statuses_are_open_until_the_request_is_dealt_with(services_by_code, status, expected):
    assert open311.request_entry(request(status=status), services_by_code, False, ZONE)["status"] == expected


def test_a_request_escalated_to_a_department_names_it_as_the_agency(services_by_code):
    escalated = request(level="department", department_name="县供电公司路灯所")
    assert open311.request_entry(escalated, services_by_code, False, ZONE)["agency_responsible"] == "县供电公司路灯所"
    back_in_the_grid = request(level="grid", department_name="县供电公司路灯所")
    assert open311.request_entry(back_in_the_grid, services_by_code, False, ZONE)["agency_responsible"] == "南门社区02网格"


def test_before_routing_classifies_it_a_request_has_the_service_it_was_filed_under(services_by_code):
    waiting = request(subclass=None, subclass_name=None, category="water_supply", status="received")
    entry = open311.request_entry(waiting, services_by_code, False, ZONE)
    assert (entry["service_code"], entry["service_name"]) == ("water_supply", load_taxonomy().subclasses["water_supply"].name)
    from_a_hotline = request(subclass=None, subclass_name=None, category="路灯")
    entry = open311.request_entry(from_a_hotline, services_by_code, False, ZONE)
    assert (entry["service_code"], entry["expected_datetime"]) == (None, None)


def test_requests_render_as_the_standards_xml(services_by_code):
    entries = [open311.request_entry(request(), services_by_code, True, ZONE)]
    root = ElementTree.fromstring(open311.answer("xml", "service_requests", entries).get_data())
    [item] = root.findall("request")
    assert root.tag == "service_requests"
    assert item.findtext("service_request_id") == "YT-20261128-7KQ4-M9XD"
    assert float(item.findtext("lat")) == 25.87
    assert item.find("service_notice").text is None


def test_a_listing_covers_ninety_days_at_most():
    now = AT
    assert open311.date_range(None, None, now, 90) == (now - timedelta(days=90), now)
    assert open311.date_range(now - timedelta(days=3), None, now, 90) == (now - timedelta(days=3), now + timedelta(days=87))
    assert open311.date_range(None, now, now, 90) == (now - timedelta(days=90), now)
    for start, end in ((now, now - timedelta(seconds=1)), (now - timedelta(days=91), now)):
        with pytest.raises(Open311Error) as refused:
            open311.date_range(start, end, now, 90)
        assert refused.value.status == 400 and refused.value.descriptions[0].startswith("end_date:")


def test_the_query_splits_its_lists_and_knows_only_open_and_closed():
    query = Open311QuerySchema().load({"service_request_id": "YT-1, YT-2", "status": "open,closed", "service_code": "a,b",
                                       "start_date": "2026-11-01T00:00:00Z"})
    assert (query["service_request_id"], query["status"], query["service_code"]) == (["YT-1", "YT-2"], ["open", "closed"], ["a", "b"])
    for bad in ({"status": "pending"}, {"service_request_id": ",".join(f"YT-{n}" for n in range(21))}, {"start_date": "2026-11-01"}):
        with pytest.raises(ValidationError):
            Open311QuerySchema().load(bad)
    assert open311.statuses_for(["closed"]) == ("$in", list(open311.CLOSED_STATUSES))
    assert open311.statuses_for(["open"]) == ("$nin", list(open311.CLOSED_STATUSES))
    assert open311.statuses_for(["open", "closed"]) is None


def stored(store, **overrides):
    document = request(_id=uuid.uuid4().hex, tracking_no=f"YT-20261128-{uuid.uuid4().hex[:4].upper()}-0000",
                       idempotency_key=uuid.uuid4().hex, **overrides)
    store.insert_request(document)
    return document["tracking_no"]


def test_a_systems_listing_filters_by_time_service_and_status_in_the_store(store):
    open_lamp = stored(store, received_at=AT - timedelta(days=1))
    closed_lamp = stored(store, received_at=AT - timedelta(days=2), status="closed")
    unclassified_water = stored(store, received_at=AT - timedelta(days=3), subclass=None, category="water_supply")
    stored(store, received_at=AT - timedelta(days=100))  # before the default 90 days
    stored(store, source="wechat")

    def listed(**query):
        return [item["tracking_no"] for item in open311.find_requests(store, query, "hotline12345", AT, 90, 1000)]

    assert listed() == [open_lamp, closed_lamp, unclassified_water]
    assert listed(status=["closed"]) == [closed_lamp]
    assert listed(status=["open"]) == [open_lamp, unclassified_water]
    assert listed(service_code=["water_supply"]) == [unclassified_water]
    assert listed(start_date=AT - timedelta(days=2, hours=1), end_date=AT - timedelta(hours=36)) == [closed_lamp]
    assert [item["tracking_no"] for item in open311.find_requests(store, {}, "hotline12345", AT, 90, 2)] == [open_lamp, closed_lamp]


def test_by_id_anyone_reads_the_requests_they_name_but_only_a_key_lists(store):
    number = stored(store, source="wechat")
    query = {"service_request_id": [number.lower(), "YT-20261128-NONE-0000"]}
    assert [item["tracking_no"] for item in open311.find_requests(store, query, None, AT, 90, 1000)] == [number]
    with pytest.raises(Open311Error) as listing:
        open311.find_requests(store, {}, None, AT, 90, 1000)
    assert listing.value.status == 403


def test_a_key_is_found_by_its_digest_until_it_is_replaced_or_revoked(store):
    first, second = open311.new_api_key(), open311.new_api_key()
    assert store.set_open311_key("hotline12345", open311.key_digest(first), AT) is False
    assert store.source_of_open311_key(open311.key_digest(first)) == "hotline12345"
    assert store.set_open311_key("hotline12345", open311.key_digest(second), AT) is True
    assert store.source_of_open311_key(open311.key_digest(first)) is None
    assert [holder["_id"] for holder in store.open311_key_holders()] == ["hotline12345"]
    assert "key_digest" not in store.open311_key_holders()[0]
    assert store.remove_open311_key("hotline12345") is True
    assert store.source_of_open311_key(open311.key_digest(second)) is None
    assert store.remove_open311_key("hotline12345") is False


# -- answers -----------------------------------------------------------------------------------

class Handlers:
    @open311.answers
    def refuse(self, request, fmt, error):
        raise error

    @open311.answers
    def read(self, request, fmt):
        return open311.answer(fmt, "form", open311.read_form(request))


PLAIN = Request(EnvironBuilder().get_environ())


def test_errors_come_in_the_standards_form_and_the_requested_format():
    as_xml = Handlers().refuse(PLAIN, fmt="xml", error=Open311Error(403, "api_key: Not a valid key."))
    assert (as_xml.status_code, as_xml.content_type) == (403, "text/xml; charset=utf-8")
    [error] = ElementTree.fromstring(as_xml.get_data()).findall("error")
    assert (error.findtext("code"), error.findtext("description")) == ("403", "api_key: Not a valid key.")
    invalid = Handlers().refuse(PLAIN, fmt="json", error=ValidationError({"lat": ["Not a valid number."], "phone": ["Bad."]}))
    assert invalid.status_code == 400
    assert json.loads(invalid.get_data()) == [{"code": 400, "description": "lat: Not a valid number."},
                                              {"code": 400, "description": "phone: Bad."}]
    unknown_format = Handlers().refuse(PLAIN, fmt="html", error=AssertionError("never raised"))
    assert unknown_format.status_code == 404 and json.loads(unknown_format.get_data())[0]["code"] == 404


@pytest.mark.parametrize("query", ["api_key=a&api_key=b", "api%5Fkey=a", "API_KEY=x&api%5fkey=a", "api_key=a&api%5Fkey=b"])
def test_a_query_with_the_key_twice_or_its_name_encoded_is_refused(query):
    """The logs mask a plain api_key= only: any other spelling the parser decodes is refused."""
    answer = Handlers().refuse(Request(EnvironBuilder(query_string=query).get_environ()), fmt="json", error=AssertionError("not reached"))
    assert answer.status_code == 400 and json.loads(answer.get_data())[0]["description"].startswith("api_key:")


def test_a_form_with_the_key_twice_or_its_name_encoded_is_refused():
    def read(**kwargs):
        return Handlers().read(Request(EnvironBuilder(method="POST", **kwargs).get_environ()), fmt="json")

    urlencoded = "application/x-www-form-urlencoded"
    assert json.loads(read(data="api_key=k&description=x", content_type=urlencoded).get_data()) == {"api_key": "k", "description": "x"}
    assert read(data="api%5Fkey=k&description=x", content_type=urlencoded).status_code == 400
    assert read(data="api_key=k&api_key=j", content_type=urlencoded).status_code == 400
    multipart = read(data={"api_key": ["k", "j"], "media": (io.BytesIO(b"x"), "a.jpg")})
    assert multipart.status_code == 400 and json.loads(multipart.get_data())[0]["description"] == "api_key: Give it once."


def test_a_form_larger_than_the_limit_is_refused_unread():
    request = Request(EnvironBuilder(method="POST", data={"description": "x" * (2 * 1024 * 1024)}).get_environ())

    class Filing:
        @open311.answers
        def file(self, request, fmt):
            open311.read_form(request)

    answer = Filing().file(request, fmt="json")
    assert answer.status_code == 413
