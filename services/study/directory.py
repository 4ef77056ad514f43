"""The grid registry as routing serves it over HTTP, cached for a while: study
targets grids and checks members' grids against it, reads who works in a grid
from the grid's own record, and never reads routing's store."""
import time

import requests

from wangge.grid_directory import GridRecords, RegistryUnavailable

PAGE_SIZE = 500
# Readings of the whole registry before giving up while new editions keep arriving.
READ_ATTEMPTS = 3


class GridDirectory:
    def __init__(self, routing_url, cache_seconds, timeout, authorization):
        self.routing_url = routing_url
        self.authorization = authorization  # () -> headers naming study's own client
        self.cache_seconds = cache_seconds
        self.timeout = timeout
        self.cached = None
        self.fetched_at = 0.0
        self.records = GridRecords(routing_url, cache_seconds, timeout, authorization)

    def grids(self):
        """{grid_id: {grid_id, name, town_id, town, community_id, community, wechat_groups}}"""
        if self.cached is None or time.monotonic() - self.fetched_at > self.cache_seconds:
            self.cached = self._fetch()
            self.fetched_at = time.monotonic()
        return self.cached

    def grid(self, grid_id):
        """The grid's own record, with its ``head``, ``workers`` and the heads of its
        community and town; ``None`` if routing knows no such grid."""
        return self.records.grid(grid_id)

    def _fetch(self):
        for _ in range(READ_ATTEMPTS):
            grids = self._read_one_edition()
            if grids is not None:
                return grids
        raise RegistryUnavailable("The grid registry kept changing while it was read from routing; try again shortly.")

    def _read_one_edition(self):
        """Every page of one registry edition, or ``None`` if a new edition was
        loaded while the pages were read (mixing two would lose or invent grids)."""
        grids, page, edition = {}, 1, None
        try:
            while True:
                response = self.records.session.get(f"{self.routing_url}/api/v1/grids", params={"page": page, "per_page": PAGE_SIZE},
                                        headers=self.authorization(), timeout=self.timeout)
                response.raise_for_status()
                body = response.json()
                if page == 1:
                    edition = body.get("version")
                elif body.get("version") != edition:
                    return None
                grids.update({grid["grid_id"]: grid for grid in body["items"]})
                if page * PAGE_SIZE >= body["total"]:
                    return grids
                page += 1
        except (requests.RequestException, ValueError, KeyError) as exc:
            raise RegistryUnavailable(f"The grid registry cannot be read from routing at {self.routing_url} ({exc}); try again shortly.") from exc
