"""退单, 派遣 and 改派 in the browser: a worker hands back a case that is not theirs and it
waits in the town lead's queue; the town lead sends a doubtful case on, correcting its
class; the county command centre places a case no grid contains."""
import uuid

import pytest
import requests

from tests.browser.conftest import poll, sign_in
from tests.browser.test_web_app import assert_accessible, assert_no_console_errors

pytestmark = pytest.mark.e2e

WORKER_02 = "w-zc-nanmen-02-1"
TOWN_LEAD = "lead-zhangcheng"
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

    waiting = queued_for(web_platform, TOWN_LEAD)[case["case_id"]]
    assert (waiting["dispatch"]["reason"], waiting["last_return"]["reason"]) == ("returned", "wrong_grid")
