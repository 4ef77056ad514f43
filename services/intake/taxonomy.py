"""Routing's taxonomy (``GET /api/v1/taxonomy``) as intake reads it for Open311's
services: over HTTP with intake's own client token, kept a while (intake never reads
routing's store or files)."""
import time

import requests

from wangge.errors import ApiError


class TaxonomyUnavailable(ApiError):
    http_status = 503
    error_code = "taxonomy_unavailable"


class RoutingTaxonomy:
    def __init__(self, routing_url, cache_seconds, timeout, authorization):
        self.url = f"{routing_url}/api/v1/taxonomy"
        self.cache_seconds = cache_seconds
        self.timeout = timeout
        self.authorization = authorization  # () -> headers naming this service's own client
        self.document = None
        self.read_at = None

    def current(self):
        """The taxonomy (``majors`` with their ``subclasses``). While routing does not
        answer, the copy read last serves, asked again only after ``cache_seconds``."""
        if self.read_at is None or time.monotonic() - self.read_at > self.cache_seconds:
            try:
                self.document = self._read()
            except TaxonomyUnavailable:
                if self.document is None:
                    raise
            self.read_at = time.monotonic()
        return self.document

    def _read(self):
        try:
            response = requests.get(self.url, headers=self.authorization(), timeout=self.timeout)
            response.raise_for_status()
            return response.json()
        except (requests.RequestException, ValueError) as exc:
            raise TaxonomyUnavailable(f"The taxonomy cannot be read from routing ({type(exc).__name__}); try again shortly.") from exc
