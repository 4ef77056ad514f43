"""Study reads routing's grid directory page by page over HTTP (a real server here)."""
import time
from contextlib import ExitStack
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from services.study.directory import PAGE_SIZE, GridDirectory
from tests.support.json_server import JsonHandler, serving
from wangge.grid_directory import RegistryUnavailable


class Routing:
    """Serves editions of 2.5 pages of grids; ``switch_after`` pages into a read, a new edition is loaded."""

    def __init__(self, switch_after=None, keep_switching=False, stalls=0):
        self.edition, self.pages_served, self.records_served = 1, 0, 0
        self.switch_after, self.keep_switching = switch_after, keep_switching
        self.stalls = stalls  # how many requests, the first ones, stall past the reader's timeout
        self.asks = 0

    def stall(self):
        self.asks += 1
        if self.stalls:
            self.stalls -= 1
            time.sleep(STALL_SECONDS)

    def grid(self, grid_id):
        """One grid's own record (its head and workers), as routing serves it."""
        self.records_served += 1
        if not grid_id.startswith("G"):
            return 404, {"error": "not_found", "message": f"No grid {grid_id}."}
        return 200, {"grid_id": grid_id, "head": {"id": f"{grid_id}-h"}, "workers": [{"id": f"{grid_id}-1"}]}

    def page(self, number):
        self.pages_served += 1
        if self.switch_after and self.pages_served % self.switch_after == 0 and (self.keep_switching or self.edition == 1):
            self.edition += 1
        total = PAGE_SIZE * 2 + PAGE_SIZE // 2
        first = (number - 1) * PAGE_SIZE
        ids = range(first, min(first + PAGE_SIZE, total))
        return {"version": self.edition, "total": total,
                "items": [{"grid_id": f"E{self.edition}-G{n}"} for n in ids]}


STALL_SECONDS, READ_TIMEOUT = 1.5, 0.5


@pytest.fixture
def routing_at():
    with ExitStack() as stack:
        def start(routing):
            class Handler(JsonHandler):
                def do_GET(self):
                    routing.stall()
                    url = urlsplit(self.path)
                    if url.path != "/api/v1/grids":
                        self.answer_json(*routing.grid(unquote(url.path.rsplit("/", 1)[1])))
                    else:
                        self.answer_json(200, routing.page(int(parse_qs(url.query)["page"][0])))

            return stack.enter_context(serving(Handler))

        yield start


def test_a_new_edition_loaded_mid_read_is_read_again_from_the_first_page(routing_at):
    grids = GridDirectory(routing_at(Routing(switch_after=2)), cache_seconds=60, timeout=5, authorization=dict).grids()
    assert len(grids) == PAGE_SIZE * 2 + PAGE_SIZE // 2
    assert {grid_id.split("-")[0] for grid_id in grids} == {"E2"}


def test_a_registry_that_never_holds_still_is_reported_not_mixed(routing_at):
    directory = GridDirectory(routing_at(Routing(switch_after=2, keep_switching=True)), cache_seconds=60, timeout=5, authorization=dict)
    with pytest.raises(RegistryUnavailable):
        directory.grids()


def test_a_grids_own_record_names_its_people_and_is_read_once_while_cached(routing_at):
    routing = Routing()
    directory = GridDirectory(routing_at(routing), cache_seconds=60, timeout=5, authorization=dict)
    assert directory.grid("G/1")["workers"] == [{"id": "G/1-1"}]  # the id travels as one path segment
    assert directory.grid("G/1")["head"] == {"id": "G/1-h"}
    assert directory.grid("unknown") is None
    assert directory.grid("unknown") is None
    assert routing.records_served == 2


def test_routing_stalling_past_the_timeout_for_a_moment_is_asked_again(routing_at):
    routing = Routing(stalls=1)
    directory = GridDirectory(routing_at(routing), cache_seconds=60, timeout=READ_TIMEOUT, authorization=dict)
    assert len(directory.grids()) == PAGE_SIZE * 2 + PAGE_SIZE // 2
    routing.stalls = 1
    assert directory.grid("G1")["head"] == {"id": "G1-h"}


def test_routing_that_stalls_twice_running_is_not_asked_a_third_time(routing_at):
    routing = Routing(stalls=2)
    directory = GridDirectory(routing_at(routing), cache_seconds=60, timeout=READ_TIMEOUT, authorization=dict)
    with pytest.raises(RegistryUnavailable):
        directory.grids()
    assert routing.asks == 2


def test_routing_that_keeps_stalling_is_reported_unavailable(routing_at):
    directory = GridDirectory(routing_at(Routing(stalls=10)), cache_seconds=60, timeout=READ_TIMEOUT, authorization=dict)
    with pytest.raises(RegistryUnavailable):
        directory.grids()
