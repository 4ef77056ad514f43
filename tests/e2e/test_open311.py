"""Open311 GeoReport v2 at /open311/v2/, with intake and routing as separate processes:
a third-party client (civicbot's Open311Client, from PyPI) lists the services, files
a request with a system's api_key and reads it back; the XML form of the same answers;
no personal data in what is read back; keys that are wrong or revoked are refused."""
import json
import re
import uuid
import xml.etree.ElementTree as ElementTree
from datetime import datetime, timedelta, timezone

import pytest
import requests
from civicbot import Endpoint, HttpError, HttpTransport, Open311Client
from civicbot.http import RateLimiter

from tests.e2e.test_api_contracts import small_county
from tests.support.polling import eventually
from tests.support.services import authorized_session, running_service

pytestmark = pytest.mark.e2e

CENTRE = "county-center"
SOURCE = "hotline12345"
NAME, PHONE, ADDRESS = "鲍金水", "13912345678", "南湖花园二区3栋"
TEXT = f"我是{NAME}，电话{PHONE}，南湖花园二区的路灯坏了，晚上黑漆漆的"


@pytest.fixture(scope="module")
def platform(module_amqp_uri, mongo_uri, tmp_path_factory):
    county, log_dir = small_county(), tmp_path_factory.mktemp("open311")
    with running_service("routing", amqp_uri=module_amqp_uri, mongo_uri=mongo_uri, log_dir=log_dir) as routing:
        loaded = routing.as_admin.put(routing.url("/api/v1/registry"), json=county, timeout=120)
        assert loaded.status_code == 200, loaded.text
        with running_service("intake", amqp_uri=module_amqp_uri, mongo_uri=mongo_uri, log_dir=log_dir,
                             extra_env={"ROUTING_URL": routing.base_url}) as intake:
            yield intake, routing, county["towns"][0]["communities"][0]["grids"][0]


@pytest.fixture(scope="module")
def api_key(platform):
    intake, _, _ = platform
    issued = intake.as_admin.post(intake.url(f"/api/v1/integrators/{SOURCE}/open311-key"), timeout=10)
    assert issued.status_code == 201, issued.text
    return issued.json()["api_key"]


def client(intake):
    """The library as an integrator's app would use it (no pause between calls: this is no city's server)."""
    endpoint = Endpoint(id="wangge", name="Wangge", base_url=intake.url("/open311/v2"), write=True)
    return Open311Client(endpoint, transport=HttpTransport(rate_limiter=RateLimiter(min_interval=0)))


def file_with_the_client(intake, api_key, grid, external_ref=None, service_code="street_lighting", description=TEXT):
    prepared = client(intake).create_request(
        service_code, dry_run=False, confirm="SEND", api_key=api_key, validate_remote=True,
        lat=25.867, lng=118.944, address_string=ADDRESS, description=description, first_name="金水", last_name="鲍", phone=PHONE,
        attributes={"grid_id": grid["id"], "external_ref": external_ref or f"HL-{uuid.uuid4().hex[:8]}"})
    [filed] = prepared.response
    return filed["service_request_id"]


def full_view(intake, tracking_no):
    return authorized_session(CENTRE).get(intake.url(f"/api/v1/requests/{tracking_no}"), timeout=10).json()


def routed(intake, tracking_no, status="assigned"):
    return eventually(lambda: (lambda view: view if view["status"] == status else None)(full_view(intake, tracking_no)),
                      timeout=30)


def test_the_client_lists_routings_taxonomy_as_services(platform):
    intake, routing, _ = platform
    taxonomy = authorized_session(CENTRE).get(routing.url("/api/v1/taxonomy"), timeout=10).json()
    services = client(intake).list_services()
    assert [(service["service_code"], service["group"]) for service in services] == [
        (subclass["code"], major["name"]) for major in taxonomy["majors"] for subclass in major["subclasses"]]
    # routing's keywords for each subclass, as Open311 lists them
    assert [service["keywords"] for service in services] == [
        ", ".join(subclass["keywords"]) or None for major in taxonomy["majors"] for subclass in major["subclasses"]]
    assert all(service["keywords"] for service in services)
    definition = client(intake).get_service_definition(services[0]["service_code"])
    assert [attribute["code"] for attribute in definition["attributes"]] == ["grid_id", "external_ref"]


def test_a_request_filed_with_the_client_is_routed_and_reads_back_without_personal_data(platform, api_key):
    intake, routing, grid = platform
    tracking_no = file_with_the_client(intake, api_key, grid)

    # filed like a message of wangge.inbound: under the key's system, with what the form said
    view = routed(intake, tracking_no)
    assert (view["channel"], view["source"], view["grid_id"]) == ("external", SOURCE, grid["id"])
    assert (view["reporter"], view["address"]) == ({"name": NAME, "phone": PHONE}, ADDRESS)
    assert view["location"] == {"lat": 25.867, "lon": 118.944}

    [read] = client(intake).list_requests(service_request_ids=[tracking_no])
    assert read == client(intake).get_request(tracking_no)
    assert (read["service_request_id"], read["status"], read["status_notes"]) == (tracking_no, "open", view["status_words"])
    assert (read["service_code"], read["service_name"]) == (view["subclass"], view["subclass_name"])
    assert read["agency_responsible"] == view["grid_name"]
    assert datetime.fromisoformat(read["requested_datetime"]) == datetime.fromisoformat(view["received_at"])
    # expected: the deadline routing holds the case to
    case = authorized_session(CENTRE).get(routing.url(f"/api/v1/cases/{view['case_id']}"), timeout=10).json()
    assert datetime.fromisoformat(read["expected_datetime"]) == datetime.fromisoformat(case["resolution_due"])
    assert client(intake).get_token(tracking_no) == [{"service_request_id": tracking_no, "token": tracking_no}]
    # anyone holding the number reads it as the tracking page shows it: no address or place
    assert not {"address", "lat", "long"} & set(read)
    assert_no_personal_data(read)

    # the system that filed it, with its key: also the address and place, still no reporter
    [own] = requests.get(intake.url(f"/open311/v2/requests/{tracking_no}.json"), params={"api_key": api_key}, timeout=10).json()
    assert (own["address"], own["lat"], own["long"]) == (ADDRESS, 25.867, 118.944)
    assert_no_personal_data(own, allow_address=True)


def assert_no_personal_data(entry, allow_address=False):
    text = json.dumps(entry, ensure_ascii=False)
    assert PHONE not in text and NAME not in text
    assert "139****5678" in entry["description"] and "鲍**" in entry["description"]
    assert allow_address or ADDRESS not in text


def test_the_same_external_ref_again_files_nothing_more(platform, api_key):
    intake, _, grid = platform
    first = file_with_the_client(intake, api_key, grid, external_ref="HL-ONCE-1")
    again = requests.post(intake.url("/open311/v2/requests.json"), timeout=10, data={
        "api_key": api_key, "service_code": "street_lighting", "description": "再说一遍：路灯坏了",
        "attribute[external_ref]": "HL-ONCE-1"})
    assert again.status_code == 200
    assert again.json()[0]["service_request_id"] == first


def test_a_systems_listing_filters_by_status_service_and_dates(platform, api_key):
    intake, _, grid = platform
    # another matter than the street light the other tests report (that one merges into their case)
    tracking_no = file_with_the_client(intake, api_key, grid, service_code="manhole_covers",
                                       description="新华路人行道上有个井盖不见了，晚上走路很危险")
    code = routed(intake, tracking_no)["subclass"]

    def listed(**params):
        response = requests.get(intake.url("/open311/v2/requests.json"), params={"api_key": api_key, **params}, timeout=10)
        assert response.status_code == 200, response.text
        return [entry["service_request_id"] for entry in response.json()]

    now = datetime.now(timezone.utc)
    assert tracking_no in listed()
    assert tracking_no in listed(status="open", service_code=f"no_such_service,{code}")
    assert tracking_no not in listed(status="closed")
    assert tracking_no not in listed(service_code="no_such_service")
    assert tracking_no not in listed(start_date=(now - timedelta(days=30)).isoformat(), end_date=(now - timedelta(days=1)).isoformat())
    assert tracking_no in listed(start_date=(now - timedelta(hours=1)).isoformat())
    # another system's key lists its own requests only
    other = intake.as_admin.post(intake.url("/api/v1/integrators/wechat/open311-key"), timeout=10).json()["api_key"]
    response = requests.get(intake.url("/open311/v2/requests.json"), params={"api_key": other}, timeout=10)
    assert response.status_code == 200 and tracking_no not in [entry["service_request_id"] for entry in response.json()]


def test_every_answer_has_its_xml_form(platform, api_key):
    intake, _, grid = platform
    services = ElementTree.fromstring(requests.get(intake.url("/open311/v2/services.xml"), timeout=10).content)
    assert services.tag == "services"
    assert [element.findtext("service_code") for element in services.findall("service")] == [
        service["service_code"] for service in client(intake).list_services()]
    definition = ElementTree.fromstring(requests.get(intake.url("/open311/v2/services/street_lighting.xml"), timeout=10).content)
    assert [element.findtext("code") for element in definition.iter("attribute")] == ["grid_id", "external_ref"]

    filed = requests.post(intake.url("/open311/v2/requests.xml"), timeout=10, data={
        "api_key": api_key, "service_code": "street_lighting", "description": TEXT, "attribute[grid_id]": grid["id"],
        "first_name": "金水", "last_name": "鲍", "phone": PHONE})
    assert (filed.status_code, filed.headers["Content-Type"]) == (201, "text/xml; charset=utf-8")
    tracking_no = ElementTree.fromstring(filed.content).find("request").findtext("service_request_id")
    assert full_view(intake, tracking_no)["source"] == SOURCE

    listing = requests.get(intake.url("/open311/v2/requests.xml"), params={"api_key": api_key}, timeout=10)
    entries = {element.findtext("service_request_id"): element for element in ElementTree.fromstring(listing.content).iter("request")}
    assert entries[tracking_no].findtext("status") == "open"
    assert PHONE not in listing.text
    assert NAME not in listing.text
    one = ElementTree.fromstring(requests.get(intake.url(f"/open311/v2/requests/{tracking_no}.xml"), timeout=10).content)
    assert one.find("request").find("address") is None
    discovery = ElementTree.fromstring(requests.get(intake.url("/open311/v2/discovery.xml"), timeout=10).content)
    assert discovery.find("endpoints").find("endpoint").findtext("url") == intake.url("/open311/v2")
    as_json = requests.get(intake.url("/open311/v2/discovery.json"), timeout=10).json()
    assert as_json["changeset"] == discovery.findtext("changeset")
    assert datetime.fromisoformat(as_json["changeset"]).tzinfo is not None


def test_a_wrong_or_revoked_key_is_refused_in_the_standards_form(platform, api_key):
    intake, _, grid = platform
    with pytest.raises(HttpError) as wrong:
        file_with_the_client(intake, "wg311_not-a-key", grid)
    assert wrong.value.status == 403
    assert json.loads(wrong.value.body) == [{"code": 403, "description": "api_key: Not a valid key (or no longer one)."}]
    as_xml = requests.post(intake.url("/open311/v2/requests.xml"), timeout=10,
                           data={"api_key": "wg311_not-a-key", "service_code": "street_lighting", "description": TEXT})
    assert as_xml.status_code == 403
    assert ElementTree.fromstring(as_xml.content).find("error").findtext("code") == "403"
    listing = requests.get(intake.url("/open311/v2/requests.json"), timeout=10)
    assert listing.status_code == 403 and listing.json()[0]["description"].startswith("api_key:")
    # counted as refused callers, not as answered
    metrics = requests.get(intake.url("/metrics"), timeout=10).text
    assert re.search(r'wangge_entrypoint_calls_total\{[^}]*entrypoint="open311_file_request"[^}]*outcome="rejected"[^}]*\} [1-9]', metrics), \
        [line for line in metrics.splitlines() if "open311_file_request" in line]

    revoked = intake.as_admin.post(intake.url("/api/v1/integrators/shortlived/open311-key"), timeout=10).json()["api_key"]
    assert file_with_the_client(intake, revoked, grid)
    assert intake.as_admin.delete(intake.url("/api/v1/integrators/shortlived/open311-key"), timeout=10).status_code == 200
    with pytest.raises(HttpError) as after:
        file_with_the_client(intake, revoked, grid)
    assert after.value.status == 403
    refused = requests.get(intake.url("/open311/v2/requests.json"), params={"api_key": revoked}, timeout=10)
    assert refused.status_code == 403


def test_bad_input_is_a_400_naming_the_parameter_and_keys_are_for_the_administrator(platform, api_key):
    intake, _, _ = platform
    bad = requests.post(intake.url("/open311/v2/requests.json"), timeout=10, data={
        "api_key": api_key, "service_code": "street_lighting", "description": "路灯坏了", "lat": "25.8", "phone": "12"})
    assert bad.status_code == 400
    assert {entry["description"].split(":")[0] for entry in bad.json()} == {"long", "phone"}
    unknown = requests.post(intake.url("/open311/v2/requests.json"), timeout=10,
                            data={"api_key": api_key, "service_code": "no_such_service", "description": "路灯坏了"})
    assert unknown.status_code == 400 and unknown.json()[0]["description"].startswith("service_code:")
    assert requests.get(intake.url("/open311/v2/services.html"), timeout=10).status_code == 404
    worker = authorized_session("w-zc-nanmen-02-1").post(intake.url("/api/v1/integrators/hotline12345/open311-key"), timeout=10)
    assert worker.status_code == 403


def test_the_key_never_reaches_intakes_log(platform, api_key):
    intake, _, _ = platform
    redacted = "/open311/v2/requests.json?api_key=***&status=open"
    lines_before = intake.process.log_path.read_text(encoding="utf-8").count(redacted)
    assert requests.get(intake.url("/open311/v2/requests.json"), params={"api_key": api_key, "status": "open"}, timeout=10).ok
    # the access line is written once the answer has gone
    log = eventually(lambda: (lambda text: text if text.count(redacted) > lines_before else None)(
        intake.process.log_path.read_text(encoding="utf-8")))
    assert api_key not in log
