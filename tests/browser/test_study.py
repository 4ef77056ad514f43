"""学在网格 in the browser: a grid worker sees this week's study campaign for their grid,
who has taken part and the 不掉队 list, and records who came to a bench meeting; the
command centre sees participation by town. Study and routing as processes, the members,
the study item and the campaign made through study's API by the people who make them."""
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from tests.browser.conftest import DESKTOP, poll, sign_in
from tests.browser.test_dispatch import GRID_02, WORKER_02
from tests.browser.test_web_app import assert_accessible, assert_no_console_errors
from tests.support.polling import once_registry_read

pytestmark = pytest.mark.e2e

NAMES = ["周婷艳", "陈建国", "林秀英", "郑美玲", "黄志强"]


@pytest.fixture(scope="module")
def campaign(web_platform):
    """Five members of 南门社区 grid 02 (one of them has read the material), and a campaign
    to the grid whose round goes out now."""
    study, run = web_platform.study, uuid.uuid4().hex[:6]
    members = [{"member_id": f"m-{run}-{n}", "name": name, "grid_id": GRID_02, "kind": "party_member" if n < 2 else "resident"}
               for n, name in enumerate(NAMES)]
    imported = once_registry_read(lambda: web_platform.api_as("county-admin").post(study.url("/api/v1/members/import"), json={"members": members}, timeout=30))
    assert imported.status_code == 200, imported.text
    editor = web_platform.api_as("editor")
    content = editor.post(study.url("/api/v1/contents"), timeout=10, json={
        "title": "扎根基层，从小事做起", "body": "学习习近平新时代中国特色社会主义思想，为社区美丽建设出一份力。" * 3, "team": "南门社区宣讲队",
        "media": [{"type": "audio", "url": "https://example.org/study/lesson.mp3"}]})
    assert content.status_code == 201, content.text
    created = editor.post(study.url("/api/v1/campaigns"), timeout=30, json={
        "title": f"网格课堂：主题教育学习 {run}", "content_ids": [content.json()["content_id"]],
        "target": {"scope": "grids", "ids": [GRID_02]},
        "schedule": {"at": (datetime.now(timezone.utc) + timedelta(seconds=2)).isoformat()}, "reminder": {"after_hours": 24, "max": 0}})
    assert created.status_code == 201, created.text
    campaign_id = created.json()["campaign_id"]
    read = web_platform.api_as(WORKER_02).post(study.url("/api/v1/checkins"), timeout=10,
                                               json={"campaign_id": campaign_id, "member_id": members[0]["member_id"], "kind": "read"})
    assert read.status_code == 201, read.text
    return {"campaign_id": campaign_id, "title": created.json()["title"], "members": members}


def grid_roll(platform, campaign_id):
    """Who study says has taken part in grid 02, and how."""
    response = platform.api_as(WORKER_02).get(platform.study.url(f"/api/v1/campaigns/{campaign_id}/participants"),
                                              params={"grid_id": GRID_02}, timeout=10)
    assert response.status_code == 200, response.text
    return {member["name"]: member["kinds"] for member in response.json()["members"]}


def test_a_grid_worker_sees_who_took_part_and_records_a_meeting_of_those_not_reached(web_platform, visit, campaign):
    worker = visit("worker-study")
    page = worker.page
    page.goto("/staff/cases")
    sign_in(page, WORKER_02)
    page.get_by_role("link", name="网格学习：参学与不掉队名单").click()
    page.get_by_role("heading", name=campaign["title"]).wait_for()
    assert page.get_by_test_id("participation").inner_text() == "1/5 人（20%）"
    assert "已读" in page.get_by_test_id("participants").locator(".van-cell", has_text=NAMES[0]).inner_text()
    missing = page.get_by_test_id("missing-members")
    assert "还没参学 4 人" in missing.inner_text() and NAMES[0] not in missing.inner_text()
    assert_accessible(worker, "study")

    page.get_by_role("button", name="记录到场").click()
    assert page.get_by_role("alert").inner_text() == "请选择学习形式"
    page.get_by_label("板凳会").check()
    page.get_by_label("宣讲队").fill("南门社区宣讲队")
    page.get_by_label(NAMES[1]).check()
    page.get_by_label(NAMES[3]).check()
    page.get_by_role("button", name="记录到场").click()
    page.get_by_role("status").filter(has_text="已记录 2 人到场").wait_for()
    page.get_by_test_id("participation").filter(has_text="3/5 人（60%）").wait_for()
    assert "还没参学 2 人" in missing.inner_text() and NAMES[1] not in missing.inner_text()
    assert_accessible(worker, "study-recorded")
    assert_no_console_errors(worker)

    assert grid_roll(web_platform, campaign["campaign_id"]) == {NAMES[0]: ["read"], NAMES[1]: ["attended"], NAMES[3]: ["attended"]}


def test_the_command_centre_sees_participation_by_town_in_the_current_campaign(web_platform, visit, campaign):
    # the campaign's round has gone out (the worker's page takes one still to come this week as well)
    sent = poll(lambda: web_platform.api_as("editor").get(web_platform.study.url(f"/api/v1/campaigns/{campaign['campaign_id']}"),
                                                          timeout=10).json()["last_round_at"])
    assert sent, "the campaign's round did not go out"
    taken = len(grid_roll(web_platform, campaign["campaign_id"]))

    centre = visit("centre-study", viewport=DESKTOP)
    page = centre.page
    page.goto("/staff/centre/study")
    sign_in(page, "county-center")
    town = page.get_by_test_id("study-towns").locator(".el-table__row", has_text="樟城镇")
    town.wait_for()
    assert page.get_by_label("学习任务").input_value() == campaign["campaign_id"]  # the newest with a round this week
    cells = [cell.inner_text() for cell in town.locator("td").all()]
    assert cells == ["樟城镇", "5", str(taken), str(5 - taken), f"{round(100 * taken / 5)}%"]
    assert f"全县参学 {taken}/5 人" in page.get_by_test_id("study-total").inner_text()
    assert page.locator(".chart canvas").count() == 1
    assert_accessible(centre, "centre-study")
    assert_no_console_errors(centre)
