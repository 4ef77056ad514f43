"""Figures the scorecard takes from other services: care's visits (visits due and
made on time) and study's participation (参学率), read over HTTP with routing's own
client token. Either may be left unconfigured, down or wrong: the scorecard then
leaves its figures out and says why in ``notes``; it never fails for them."""
import logging
from datetime import datetime

import requests
from nameko.extensions import DependencyProvider

from wangge.auth import ServiceCredentials
from wangge.logs import short_error

from services.routing import indicators

log = logging.getLogger(__name__)

# Care and study keep their figures by area, not by department or worker.
PARTNER_LEVELS = ("grid", "community", "town")


class PartnerFigures:
    def __init__(self, care_url, study_url, timeout, authorization):
        self.care_url, self.study_url = care_url.rstrip("/"), study_url.rstrip("/")
        self.timeout = timeout
        self.authorization = authorization  # () -> headers naming routing's own client

    def care_rows(self, by, period):
        answer = self._get(f"{self.care_url}/api/v1/care/indicators",
                           {"by": by, "from": period.first_day.isoformat(), "to": period.last_day.isoformat()})
        return answer["rows"]

    def study_rows(self, by, period):
        """Members and participants of the campaigns whose first round falls in ``period``, summed."""
        campaigns = self._get(f"{self.study_url}/api/v1/campaigns")["items"]
        reports = [self._get(f"{self.study_url}/api/v1/campaigns/{campaign['campaign_id']}/report", {"by": by})["rows"]
                   for campaign in campaigns if period.holds(datetime.fromisoformat(indicators.campaign_starts(campaign)))]
        return indicators.study_rows(reports, by)

    def _get(self, url, params=None):
        response = requests.get(url, params=params, headers=self.authorization(), timeout=self.timeout)
        response.raise_for_status()
        return response.json()

    def add_figures(self, rows, by, period, in_scope):
        """``(rows, notes)``: ``rows`` with care's and study's figures where they answer."""
        if by not in PARTNER_LEVELS:
            return rows, ["care and study keep their figures by grid, community and town only"]
        notes = []
        for name, url, read, figures, rate in (
            ("care", self.care_url, self.care_rows, indicators.CARE_FIGURES, "visit_rate"),
            ("study", self.study_url, self.study_rows, indicators.STUDY_FIGURES, "study_participation_rate"),
        ):
            if not url:
                notes.append(f"{name}: not configured, its figures are left out")
                continue
            try:
                theirs = read(by, period)
            # Anything wrong over there (down, refusing routing's token, another shape of
            # answer) leaves its figures out: the scorecard of the cases still answers.
            except Exception as exc:
                log.warning("scorecard figures left out", extra={"partner": name, "reason": short_error(exc)})
                notes.append(f"{name}: did not answer ({type(exc).__name__}), its figures are left out")
                continue
            rows = indicators.merge_figures(rows, by, theirs, figures, rate, in_scope)
        return rows, notes


class Partners(DependencyProvider):
    """Care and study as ``INDICATORS`` names them, called with routing's own client token."""

    def setup(self):
        config = self.container.config
        settings = config["INDICATORS"]
        credentials = ServiceCredentials.from_config(config["AUTH"])
        self.partners = PartnerFigures(settings["CARE_URL"] or "", settings["STUDY_URL"] or "", float(settings["TIMEOUT_SECONDS"]),
                                       credentials.authorization)

    def get_dependency(self, worker_ctx):
        return self.partners
