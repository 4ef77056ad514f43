"""A resident files at their grid's link; that grid's worker signs in, acknowledges
and resolves the case; the resident sees it resolved and closes it at follow-up.
Every page is scanned with axe-core; screenshots go to var/browser/."""
import json
import re
import uuid

import pytest

from tests.browser.conftest import poll, sign_in
from tests.support.broker import drain, watch_queue
from wangge import events, topology

pytestmark = pytest.mark.e2e

GRID_02 = "YT-ZC-NANMEN-02"  # 南门社区第二网格: w-zc-nanmen-02-1 is its only worker on duty
WORKER_02 = "w-zc-nanmen-02-1"
WORKER_01 = "w-zc-nanmen-01-1"  # the grid beside it
NANHU = {"latitude": 24.3, "longitude": 116.1}


def assert_accessible(visit, page_name):
    visit.screenshot(page_name)
    assert visit.serious_accessibility_violations() == [], page_name


def file_at_grid_link(resident, text):
    page = resident.page
    page.goto(f"/report/{GRID_02}")
    page.get_by_label("问题描述").fill(text)
    page.get_by_label("地址").fill("樟城镇南门社区南湖花园二区3栋")
    page.get_by_label("联系电话").fill("13800000001")
    page.get_by_role("button", name="附上我现在的位置").click()
    page.get_by_text("已附上位置").wait_for()
    assert_accessible(resident, "report-form")
    page.get_by_role("button", name="提交").click()
    tracking_no = page.get_by_test_id("tracking-no").inner_text()
    assert re.fullmatch(r"YT-\d{8}-[0-9A-Z]{4}-[0-9A-Z]{4}", tracking_no)
    assert_accessible(resident, "report-filed")
    return tracking_no


def test_a_request_from_a_grid_link_is_worked_by_that_grid_and_closed_by_the_resident(web_platform, visit, platform_amqp_uri):
    # clear enough for the classifier to dispatch it at once (a doubtful one waits for the town lead)
    text = f"南湖花园二区3栋门口的路灯一到晚上就不亮{uuid.uuid4().hex[:4]}，黑漆漆的"

    resident = visit("resident", permissions=["geolocation"], geolocation=NANHU)
    resident.page.goto("/")
    assert_accessible(resident, "home")
    tracking_no = file_at_grid_link(resident, text)

    # the grid's worker: sign in at the provider, find the case among their open cases
    worker = visit("worker")
    page = worker.page
    page.goto("/staff/cases")
    sign_in(page, WORKER_02)
    page.wait_for_url("**/staff/cases")

    def case_listed():
        card = page.locator(".case-card", has_text=text)
        if card.count():
            return card
        page.get_by_role("button", name="全部").click()  # refetch happens on reload below
        page.reload()
        return None

    card = poll(case_listed, timeout=30, interval=1)
    assert card, f"{text} never reached {WORKER_02}'s cases"
    assert card.get_by_text(re.compile("响应(还剩|已超时)")).count() == 1
    assert_accessible(worker, "my-cases")
    card.click()
    page.wait_for_url("**/staff/cases/*")
    case_id = page.url.rsplit("/", 1)[1]
    assert page.get_by_test_id("reporter-count").inner_text().endswith("1 人")
    # the small map: the grid's area and the place the resident attached
    place_map = page.get_by_test_id("place-map")
    assert "居民标注的位置" in place_map.get_attribute("aria-label")
    assert poll(lambda: place_map.locator("path.leaflet-interactive").count() == 2), place_map.inner_html()[:300]
    assert_accessible(worker, "case-assigned")

    page.get_by_label("办理说明").fill("收到，马上安排电工")
    page.get_by_role("button", name="响应").click()
    page.get_by_test_id("case-status").filter(has_text="已响应").wait_for()
    page.get_by_label("办理说明").fill("已更换灯泡，恢复照明")
    # the follow-up link reaches the resident in notify's message; here it is read off the event
    with watch_queue(platform_amqp_uri, topology.events_exchange("routing"), events.FOLLOW_UP_REQUESTED) as asked:
        page.get_by_role("button", name="办结").click()
        page.get_by_test_id("case-status").filter(has_text="已办结待回访").wait_for()
        [message] = drain(platform_amqp_uri, asked, timeout=10, expected=1)
    token = events.read_event(events.FOLLOW_UP_REQUESTED, json.loads(message.body))["data"]["follow_up_token"]
    timeline = page.get_by_test_id("case-timeline").inner_text()
    assert "已响应" in timeline and "已更换灯泡，恢复照明" in timeline
    assert_accessible(worker, "case-resolved")

    # the resident: tracking shows it resolved, the follow-up closes it
    track = resident.page
    track.goto(f"/track/{tracking_no}")

    def shows(words):
        track.reload()
        return track.get_by_test_id("status-words").inner_text() == words

    assert poll(lambda: shows("已办结，等待回访")), track.get_by_test_id("status-words").inner_text()
    assert "网格员已响应" in track.get_by_test_id("timeline").inner_text()
    assert "已更换灯泡，恢复照明" in track.get_by_test_id("result").inner_text()
    assert "收到，马上安排电工" not in track.content()  # the worker's other notes are not the resident's
    assert_accessible(resident, "track-resolved")

    track.goto(f"/follow-up/{token}")
    assert_accessible(resident, "follow-up")
    track.get_by_label("已解决").check()
    track.get_by_label("5分 非常满意").check()
    track.get_by_label("意见").fill("很及时，谢谢")
    track.get_by_role("button", name="提交评价").click()
    assert track.get_by_test_id("follow-up-status").inner_text() == "已办结"
    assert_accessible(resident, "follow-up-done")

    track.goto(f"/track/{tracking_no}")
    assert poll(lambda: shows("已结案")), track.get_by_test_id("status-words").inner_text()
    assert "已更换灯泡，恢复照明" in track.get_by_test_id("result").inner_text()
    assert_accessible(resident, "track-closed")

    # the same link a second time is refused in words
    track.goto(f"/follow-up/{token}")
    track.get_by_label("没有解决").check()
    track.get_by_label("1分 非常不满意").check()
    track.get_by_role("button", name="提交评价").click()
    assert "已经用过或已过期" in track.get_by_role("alert").inner_text()

    assert_no_console_errors(resident, allowed=[r"status of 403"])
    assert_no_console_errors(worker)

    # another grid's worker cannot open the case
    other = visit("other-worker")
    other.page.goto(f"/staff/cases/{case_id}")
    sign_in(other.page, WORKER_01)
    assert "不在您负责的范围内" in other.page.get_by_role("alert").inner_text()
    assert_accessible(other, "case-of-another-grid")
    other.page.goto("/staff/cases")
    other.page.get_by_text("没有待办案件").or_(other.page.locator(".case-card")).first.wait_for()
    assert other.page.locator(".case-card", has_text=text).count() == 0
    assert_no_console_errors(other, allowed=[r"status of 403"])


def test_grid_qr_code_page_links_to_the_grids_report_form(web_platform, visit):
    worker = visit("qr")
    page = worker.page
    page.goto(f"/staff/grids/{GRID_02}/qr")
    sign_in(page, WORKER_02)
    code = page.get_by_test_id("qr-code")
    code.locator("svg").wait_for()
    assert code.get_attribute("aria-label").endswith(f"/report/{GRID_02}")
    assert "南门社区第二网格" in page.locator(".poster h2").inner_text()
    assert_accessible(worker, "grid-qr")
    assert_no_console_errors(worker)


def test_tracking_an_unknown_number_and_an_unknown_page_say_so(web_platform, visit):
    resident = visit("unknown")
    page = resident.page
    page.goto("/track")
    assert_accessible(resident, "track-empty")
    page.get_by_label("受理编号").fill("YT-20200101-0000-0000")
    page.keyboard.press("Enter")
    assert "没有找到这个编号" in page.get_by_role("alert").inner_text()
    assert_accessible(resident, "track-unknown")
    page.goto("/no/such/page")
    page.get_by_text("没有这个页面").wait_for()
    assert_accessible(resident, "not-found")
    assert_no_console_errors(resident, allowed=[r"status of 404"])


def assert_no_console_errors(visit, allowed=()):
    """Only the failed requests a test provokes on purpose may show in the console."""
    unexpected = [line for line in visit.console_errors if not any(re.search(pattern, line) for pattern in allowed)]
    assert unexpected == [], visit.name
