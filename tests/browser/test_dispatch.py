"""退单, 派遣 and 改派 in the browser: a worker hands back a case that is not theirs and it
waits in the town lead's queue; the town lead sends a doubtful case on, correcting its
class; the county command centre places a case no grid contains."""
import uuid

import pytest
import requests

from tests.browser.conftest import DESKTOP, PHONE, poll, sign_in
from tests.browser.test_web_app import assert_accessible, assert_no_console_errors

pytestmark = pytest.mark.e2e

WORKER_02 = "w-zc-nanmen-02-1"
GRID_01, GRID_02 = "YT-ZC-NANMEN-01", "YT-ZC-NANMEN-02"
TOWN_LEAD = "lead-zhangcheng"
CENTRE = "county-center"
ADDRESS = "樟城镇南门社区南湖花园二区"


def file_request(platform, text, address=ADDRESS):
    """A resident's request through intake; the case routing made of it, once it is there."""
    body = {"channel": "wechat_group", "text": text, **({"address": address} if address else {})}
    filed = requests.post(platform.intake.url("/api/v1/requests"), json=body, timeout=10)
    assert filed.status_code == 201, filed.text
    center = platform.api_as("county-center")
    url = platform.intake.url(filed.json()["url"])
    view = poll(lambda: (lambda v: v if v.get("case_id") else None)(center.get(url, timeout=10).json()))
    assert view, f"no case for {text}"
    return center.get(platform.routing.url(f"/api/v1/cases/{view['case_id']}"), timeout=10).json()


def queued_for(platform, who):
    response = platform.api_as(who).get(platform.routing.url("/api/v1/dispatch-queue"), timeout=10)
    assert response.status_code == 200, response.text
    return {item["case_id"]: item for item in response.json()["items"]}


def test_a_worker_returns_a_case_that_is_not_theirs_and_it_waits_for_the_town_lead(web_platform, visit):
    text = f"南湖花园二区旁边的井盖不见了，晚上走路很危险{uuid.uuid4().hex[:4]}"
    case = file_request(web_platform, text)
    assert case["assignee"]["id"] == WORKER_02, case["status"]

    worker = visit("worker-return")
    page = worker.page
    page.goto(f"/staff/cases/{case['case_id']}")
    sign_in(page, WORKER_02)
    page.get_by_role("button", name="退单（不属于我办理）").click()
    page.get_by_role("button", name="确认退单").click()
    assert page.get_by_role("alert").inner_text() == "请选择退单原因"
    page.get_by_label("不属于本网格").check()
    page.get_by_role("button", name="确认退单").click()
    assert "退单说明" in page.get_by_role("alert").inner_text()
    page.get_by_label("退单说明").fill("井盖在和平路那一侧，属于南门社区第一网格")
    assert_accessible(worker, "case-return")
    page.get_by_role("button", name="确认退单").click()
    page.get_by_test_id("case-status").filter(has_text="已退单待派遣").wait_for()
    assert "退单：不属于本网格" in page.get_by_test_id("case-timeline").inner_text()
    assert page.get_by_role("button", name="退单（不属于我办理）").count() == 0
    assert_accessible(worker, "case-returned")

    page.goto("/staff/cases")
    page.get_by_text("没有待办案件").or_(page.locator(".case-card")).first.wait_for()
    assert page.locator(".case-card", has_text=text).count() == 0
    assert_no_console_errors(worker)

    # the town lead finds it in their queue, with the worker's reason
    lead = visit("lead-queue-returned", viewport=DESKTOP)
    lead.page.goto("/staff/centre/queue")
    sign_in(lead.page, TOWN_LEAD)
    row = queue_row(lead.page, text)
    assert "退单" in row.inner_text() and "井盖在和平路那一侧" in row.inner_text()
    assert_accessible(lead, "centre-queue")
    assert_no_console_errors(lead)


def queue_row(page, text):
    page.get_by_test_id("dispatch-queue").wait_for()
    row = page.locator(".el-table__row", has_text=text)
    row.wait_for()
    return row


def case_as(platform, who, case_id):
    response = platform.api_as(who).get(platform.routing.url(f"/api/v1/cases/{case_id}"), timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def test_a_town_lead_dispatches_a_doubtful_case_correcting_its_class(web_platform, visit):
    text = f"那个东西又坏了{uuid.uuid4().hex[:4]}"
    case = file_request(web_platform, text)
    assert case["awaiting_dispatch"] and case["dispatch"]["reason"] == "low_confidence", case["status"]
    assert case["case_id"] in queued_for(web_platform, TOWN_LEAD)

    lead = visit("lead-dispatch", viewport=DESKTOP)
    page = lead.page
    page.goto("/staff/centre/queue")
    sign_in(page, TOWN_LEAD)
    page.get_by_role("button", name="分类存疑").click()
    row = queue_row(page, text)
    assert "分类存疑" in row.inner_text()
    row.get_by_role("button", name="派遣").click()
    dialog = page.get_by_role("dialog", name="派遣")
    dialog.wait_for()
    assert dialog.get_by_role("combobox", name="网格", exact=True).input_value() == GRID_02  # where routing located it
    # the departments offered are the registry's, where routing can send a case (the taxonomy names more)
    dialog.get_by_label("职能部门").check()
    offered = dialog.get_by_label("部门", exact=True).locator("option").all_inner_texts()[1:]
    registry = web_platform.api_as(TOWN_LEAD).get(web_platform.routing.url("/api/v1/departments"), timeout=10).json()["items"]
    assert offered == [department["name"] for department in registry]
    assert "县燃气公司" not in offered
    dialog.get_by_role("radio", name="网格").check()
    dialog.get_by_label("全部分类").select_option("road_damage")
    dialog.get_by_label("网格员").select_option(WORKER_02)
    dialog.get_by_label("说明").fill("路面塌陷，请网格员到现场核实")
    assert_accessible(lead, "centre-dispatch")
    dialog.get_by_role("button", name="确认派遣").click()
    page.get_by_role("status").filter(has_text="已派遣").wait_for()
    assert page.locator(".el-table__row", has_text=text).count() == 0
    assert_no_console_errors(lead)

    dispatched = case_as(web_platform, TOWN_LEAD, case["case_id"])
    assert (dispatched["status"], dispatched["subclass"], dispatched["grid_id"]) == ("assigned", "road_damage", GRID_02)
    assert dispatched["assignee"]["id"] == WORKER_02
    entry = dispatched["timeline"][-1]
    assert (entry["kind"], entry["by"], entry["to_subclass"]) == ("dispatch", TOWN_LEAD, "road_damage")


def test_the_command_centre_places_a_case_no_grid_contains(web_platform, visit):
    text = f"有个地方的井盖不见了{uuid.uuid4().hex[:4]}，很危险"
    case = file_request(web_platform, text, address=None)
    assert case["triage"] and case["dispatch"]["reason"] == "unlocated", case["status"]

    centre = visit("centre-place", viewport=DESKTOP)
    page = centre.page
    page.goto("/staff/centre")
    sign_in(page, CENTRE)
    page.wait_for_url("**/staff/centre/queue")
    page.get_by_role("button", name="待分拨网格").click()
    queue_row(page, text).get_by_role("button", name="分拨").click()
    dialog = page.get_by_role("dialog", name="分拨到网格")
    dialog.get_by_label("乡镇").select_option(label="樟城镇")
    dialog.get_by_label("社区（村）").select_option(label="南门社区")
    dialog.get_by_role("combobox", name="网格", exact=True).select_option(GRID_01)
    assert_accessible(centre, "centre-place")
    dialog.get_by_role("button", name="确认分拨").click()
    page.get_by_role("status").filter(has_text="已分拨到网格").wait_for()
    assert_no_console_errors(centre)

    placed = case_as(web_platform, CENTRE, case["case_id"])
    assert (placed["grid_id"], placed["triage"], placed["awaiting_dispatch"]) == (GRID_01, False, False)


def test_the_command_centre_sees_breaches_escalations_the_map_and_the_scorecard(web_platform, visit):
    # every test files its own kind of request: routing would merge a like one nearby into an open case
    case = file_request(web_platform, f"路边的垃圾好几天没人清运了{uuid.uuid4().hex[:4]}，臭气熏天")
    worker = web_platform.api_as(WORKER_02)
    escalated = worker.post(web_platform.routing.url(f"/api/v1/cases/{case['case_id']}/escalate"), json={"note": "需社区协调"}, timeout=10)
    assert escalated.status_code == 200, escalated.text

    centre = visit("centre-map", viewport=DESKTOP)
    page = centre.page
    page.goto("/staff/centre/attention")
    sign_in(page, CENTRE)
    page.get_by_test_id("escalated-cases").locator(".el-table__row", has_text=case["tracking_no"]).wait_for()
    assert_accessible(centre, "centre-attention")

    page.get_by_role("link", name="全县地图").click()
    areas = page.get_by_test_id("map-areas")
    areas.get_by_role("button", name="樟城镇").click()
    areas.get_by_role("button", name="南门社区").click()
    areas.get_by_role("button", name="南门社区第二网格").click()
    page.get_by_test_id("grid-cases").locator(".el-table__row", has_text=case["tracking_no"]).wait_for()
    page.get_by_test_id("grid-cases").locator(".el-loading-mask").wait_for(state="detached")  # the screenshot without its fading spinner
    assert page.locator(".leaflet-container").count() == 1
    assert_accessible(centre, "centre-map")

    page.get_by_role("link", name="考核指标").click()
    town_row = page.get_by_test_id("indicator-rows").locator(".el-table__row", has_text="樟城镇")
    town_row.wait_for()
    assert int(town_row.locator("td").nth(1).inner_text()) >= 1  # received this month
    assert_accessible(centre, "centre-indicators")
    page.get_by_role("button", name="网格").click()
    grid_row = page.get_by_test_id("indicator-rows").locator(".el-table__row", has_text="南门社区 · 南门社区第二网格")
    grid_row.wait_for()
    assert int(grid_row.locator("td").nth(1).inner_text()) >= 1
    assert page.get_by_role("heading", name="考核指标（按网格）").count() == 1
    assert_accessible(centre, "centre-indicators-by-grid")

    # a lead on a phone: nothing wider than the screen, the map above its list
    page.set_viewport_size(PHONE)
    page.get_by_role("link", name="全县地图").click()
    page.get_by_test_id("map-areas").get_by_role("button", name="樟城镇").wait_for()
    assert page.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"]
    # the list shows once the map's data is in, which is drawn at once
    assert page.locator(".leaflet-tooltip").count() == 0  # no town labels over a phone's small map: the list names them
    assert_accessible(centre, "centre-map-phone")
    assert_no_console_errors(centre)
