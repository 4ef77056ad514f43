"""A grid head sees their workers' load and the overdue cases of their grids."""
import re
import uuid

import pytest

from tests.browser.conftest import sign_in
from tests.browser.test_dispatch import WORKER_02, file_request
from tests.browser.test_web_app import assert_accessible, assert_no_console_errors

pytestmark = pytest.mark.e2e

GRID_HEAD_02 = "w-zc-nanmen-02-h"


def test_a_grid_head_sees_each_workers_open_and_overdue_cases(web_platform, visit):
    case = file_request(web_platform, f"小区门口的下水道堵了{uuid.uuid4().hex[:4]}，污水漫到路上")
    assert case["assignee"]["id"] == WORKER_02

    head = visit("grid-head")
    page = head.page
    page.goto("/staff/cases")
    sign_in(page, GRID_HEAD_02)
    page.get_by_role("link", name="网格员工作量与超时案件").click()
    loads = page.get_by_test_id("worker-loads")
    loads.wait_for()
    worker_row = loads.locator(".van-cell", has_text=case["assignee"]["name"])
    assert re.search(r"未办结 [1-9]\d* 件", worker_row.inner_text()), worker_row.inner_text()
    assert "不在岗" in loads.inner_text()  # the grid's worker off duty is listed too
    assert_accessible(head, "grid-head-team")
    assert_no_console_errors(head)
