"""Routing's grid records as the other services read them: over HTTP, with the
service's own client token, cached a while (no service reads routing's store).

A grid's record names its head, its workers and the heads of its community and
town, so it also says who serves the grid (:func:`serves_grid`)."""
import time
from urllib.parse import quote

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from wangge.errors import ApiError

GRID_ROLES = frozenset({"grid_worker", "grid_head"})
# which head of a grid's record each lead role is
LEAD_HEADS = {"community_lead": "community_head", "town_lead": "town_head"}


class RegistryUnavailable(ApiError):
    http_status = 503
    error_code = "registry_unavailable"


def routing_session():
    """A session that asks routing again, twice at most, when the connection fails or
    routing answers 502/503/504, and once when its answer does not begin within the
    timeout: one slow moment of routing's (a store pause, a registry being loaded)
    should not fail the caller's request, and an overloaded routing is not asked
    three times. Reads only; they change nothing, so asking again is safe."""
    retry = Retry(total=2, read=1, backoff_factor=0.5, status_forcelist=(502, 503, 504), allowed_methods=frozenset({"GET"}),
                  raise_on_status=False, respect_retry_after_header=False)
    session = requests.Session()
    session.mount("http://", HTTPAdapter(max_retries=retry))
    session.mount("https://", HTTPAdapter(max_retries=retry))
    return session


class GridRecords:
    def __init__(self, routing_url, cache_seconds, timeout, authorization):
        self.routing_url = routing_url
        self.authorization = authorization  # () -> headers naming this service's own client
        self.cache_seconds = cache_seconds
        self.timeout = timeout
        self.records = {}  # grid_id -> (record or None, read at)
        self.session = routing_session()

    def grid(self, grid_id):
        """The grid's record with its ``head``, ``workers``, ``community_head`` and ``town_head``;
        ``None`` if routing knows no such grid."""
        record, read_at = self.records.get(grid_id, (None, None))
        if read_at is None or time.monotonic() - read_at > self.cache_seconds:
            record = self._read(grid_id)
            self.records[grid_id] = (record, time.monotonic())
        return record

    def _read(self, grid_id):
        url = f"{self.routing_url}/api/v1/grids/{quote(grid_id, safe='')}"
        try:
            response = self.session.get(url, headers=self.authorization(), timeout=self.timeout)
            if response.status_code == 404:
                return None
            response.raise_for_status()
            return response.json()
        except (requests.RequestException, ValueError) as exc:
            raise RegistryUnavailable(f"Grid {grid_id} cannot be read from routing at {self.routing_url} ({exc}); try again shortly.") from exc


def serves_grid(caller, grid):
    """Whether ``caller`` works in, heads or leads ``grid`` (a grid record; ``None``: no such grid)."""
    if grid is None:
        return False
    if caller.has_any(GRID_ROLES) and ((grid.get("head") or {}).get("id") == caller.subject or any(
            worker.get("id") == caller.subject for worker in grid.get("workers") or [])):
        return True
    return any(role in caller.roles and (grid.get(head) or {}).get("id") == caller.subject for role, head in LEAD_HEADS.items())
