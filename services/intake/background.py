"""Announcing a stored request beside the answer.

A request is durable once stored; announcing it (``request_received``, with the
broker's confirm) can take seconds when the broker is writing hard — one filing
was seen to wait 19 s for it — and a resident's form, WeCom's callback (which WeCom
sends again after 5 s) or an integrator's consumer would wait with it. So the
announcement runs beside the answer, in a pool as large as the broker connections
nameko's publisher keeps: with that many under way, a request is left to the
announce timer (its claim runs out in ``ANNOUNCE_CLAIM_SECONDS``) rather than hold
up its filer. The pool has a store client of its own, closed only once a graceful
stop has let the announcements under way finish: nameko stops every dependency at
once, and the service's own client may be closed before they do.
"""
import logging

import eventlet
from eventlet.greenpool import GreenPool
from kombu.pools import get_limit
from nameko.extensions import DependencyProvider

from wangge import events
from wangge.logs import short_error
from wangge.mongo import connect

from services.intake import metrics, submissions
from services.intake.storage import RequestStore

log = logging.getLogger(__name__)

# how long a graceful stop lets announcements under way finish
STOP_WAIT_SECONDS = 5


def announce(store, dispatch, request):
    """Announce ``request`` now; a failure leaves it pending for the timer."""
    try:
        submissions.announce(store, dispatch, request, events.utcnow())
    except Exception as exc:
        metrics.ANNOUNCE_FAILURES.inc()
        log.warning("request_received not published yet", extra={"tracking_no": request["tracking_no"], "reason": short_error(exc)})


class Announcements(DependencyProvider):
    """``announce_soon(dispatch, request)``: announce the request beside the answer;
    ``False`` if it is left to the timer."""

    def setup(self):
        config = self.container.config
        self.client = connect(config["MONGO_URI"])
        self.store = RequestStore(self.client[config["MONGO_DATABASE"]])
        # nameko's publisher takes a producer from kombu's pool, which holds this many
        self.pool = GreenPool(get_limit())

    def get_dependency(self, worker_ctx):
        return self.announce_soon

    def announce_soon(self, dispatch, request):
        if not self.pool.free():
            log.info("request_received left to the timer", extra={"tracking_no": request["tracking_no"]})
            return False
        self.pool.spawn_n(announce, self.store, dispatch, request)
        return True

    def stop(self):
        with eventlet.Timeout(STOP_WAIT_SECONDS, False):
            self.pool.waitall()
        self.client.close()

    def kill(self):
        self.client.close()
