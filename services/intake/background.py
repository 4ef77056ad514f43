"""Announcing a stored request beside the answer.

A request is durable once stored; announcing it (``request_received``, with the
broker's confirm) can take seconds when the broker is writing hard — one filing
was seen to wait 19 s for it — and a resident's form, WeCom's callback (which WeCom
sends again after 5 s) or an integrator's consumer would wait with it. So the
announcement runs beside the answer, as many at once as the broker connections
nameko's publisher keeps: with that many under way, the next filer waits up to a
second for a place (a burst's announcements follow one another in milliseconds),
and then leaves its request to the announce timer (its claim runs out in
``ANNOUNCE_CLAIM_SECONDS``) rather than wait on a broker that does not confirm.

The pool has a store client of its own, closed only once a graceful stop has let the
announcements under way finish: nameko stops every dependency at once, and the
service's own client may be closed before they do.
"""
import logging

import eventlet
from eventlet.greenpool import GreenPool
from eventlet.semaphore import Semaphore
from kombu.pools import get_limit
from nameko.extensions import DependencyProvider

from wangge import events
from wangge.logs import short_error
from wangge.mongo import connect

from services.intake import metrics, submissions
from services.intake.storage import RequestStore

log = logging.getLogger(__name__)

# how long a filer waits for a place before leaving its request to the timer
PLACE_WAIT_SECONDS = 1
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
        self.places = Semaphore(get_limit())
        self.pool = GreenPool()

    def get_dependency(self, worker_ctx):
        return self.announce_soon

    def announce_soon(self, dispatch, request):
        if not self.places.acquire(timeout=PLACE_WAIT_SECONDS):
            log.info("request_received left to the timer", extra={"tracking_no": request["tracking_no"]})
            return False
        self.pool.spawn_n(self._announce_in_place, dispatch, request)
        return True

    def _announce_in_place(self, dispatch, request):
        try:
            announce(self.store, dispatch, request)
        finally:
            self.places.release()

    def stop(self):
        with eventlet.Timeout(STOP_WAIT_SECONDS, False):
            self.pool.waitall()
        self.client.close()

    def kill(self):
        self.client.close()
