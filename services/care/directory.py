"""routing's grid records, read over HTTP with care's own client token and cached
(care never reads routing's store). A community or a town is known by one of its
grids: that grid's record names the community and town, and their heads."""
import time

import requests

from wangge.grid_directory import GridRecords, RegistryUnavailable

AREA_QUERY = {"community": "community_id", "town": "town_id"}


class GridDirectory:
    def __init__(self, routing_url, cache_seconds, timeout, authorization):
        self.routing_url = routing_url
        self.cache_seconds = cache_seconds
        self.timeout = timeout
        self.authorization = authorization  # () -> headers naming care's own client
        self.records = GridRecords(routing_url, cache_seconds, timeout, authorization)
        self.areas = {}  # (level, id) -> (grid_id or None, read at)

    def grid(self, grid_id):
        """The grid's record with its ``head``, ``workers``, ``community_head`` and ``town_head``;
        ``None`` if routing knows no such grid."""
        return self.records.grid(grid_id)

    def area(self, level, area_id):
        """The record of one grid of the community or town (``level``); ``None`` if it has none."""
        grid_id, read_at = self.areas.get((level, area_id), (None, None))
        if read_at is None or time.monotonic() - read_at > self.cache_seconds:
            grid_id = self._first_grid(level, area_id)
            self.areas[(level, area_id)] = (grid_id, time.monotonic())
        return self.grid(grid_id) if grid_id else None

    def _first_grid(self, level, area_id):
        try:
            response = self.records.session.get(f"{self.routing_url}/api/v1/grids", params={AREA_QUERY[level]: area_id, "per_page": 1},
                                    headers=self.authorization(), timeout=self.timeout)
            response.raise_for_status()
            items = response.json()["items"]
        except (requests.RequestException, ValueError, KeyError) as exc:
            raise RegistryUnavailable(f"The grid registry cannot be read from routing at {self.routing_url} ({exc}); try again shortly.") from exc
        return items[0]["grid_id"] if items else None
