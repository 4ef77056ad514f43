"""Who works in, heads and leads a grid, as routing's grid directory says it (the
grid's own record names its head, workers and the heads of its community and town),
read with intake's own client token and cached a while. Intake never reads routing's store."""
import time
from urllib.parse import quote

import requests

from wangge.errors import ApiError


class RegistryUnavailable(ApiError):
    http_status = 503
    error_code = "registry_unavailable"


class GridRecords:
    def __init__(self, routing_url, cache_seconds, timeout, authorization):
        self.routing_url = routing_url
        self.authorization = authorization  # () -> headers naming intake's own client
        self.cache_seconds = cache_seconds
        self.timeout = timeout
        self.records = {}  # grid_id -> (record or None, read at)

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
            response = requests.get(url, headers=self.authorization(), timeout=self.timeout)
            if response.status_code == 404:
                return None
            response.raise_for_status()
            return response.json()
        except (requests.RequestException, ValueError) as exc:
            raise RegistryUnavailable(f"Grid {grid_id} cannot be read from routing at {self.routing_url} ({exc}); try again shortly.") from exc
