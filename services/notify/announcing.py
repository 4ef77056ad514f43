"""Publishing a send's outcomes (``notification_sent``, ``notification_failed``) as
soon as they are recorded.

The outcome events of a batch of sends are stored in one announcement before the
outcomes are recorded (``outgoing.deliver``): a process that dies in between
announces them twice, never not at all. Here each is published right after,
beside the sends, and then dropped, the drops of concurrent batches in one write.
No send waits for the broker: with every place taken the announcement is left to
the announce timer, as is one the broker does not take now. The timer leaves alone
what is being published here.
"""
import logging

import eventlet
from eventlet.greenpool import GreenPool
from eventlet.semaphore import Semaphore

from wangge.logs import short_error
from wangge.mongo import GroupCommit

log = logging.getLogger(__name__)


class Announcer:
    """``soon(announcement)`` publishes a stored announcement's events with
    ``publish(event_type, event)`` and drops it; ``in_flight``: the ids under way."""

    def __init__(self, store, publish, places):
        self.store = store
        self.publish = publish
        self.places = Semaphore(places)
        self.pool = GreenPool()
        self.in_flight = set()
        self._drop = GroupCommit(self._drop_batch)

    def soon(self, announcement):
        """``False`` if it is left to the timer (every place taken)."""
        if not self.places.acquire(blocking=False):
            return False
        self.in_flight.add(announcement["_id"])
        self.pool.spawn_n(self._announce, announcement)
        return True

    def _announce(self, announcement):
        try:
            for event in announcement["events"]:
                self.publish(event["event_type"], event)
            self._drop(announcement["_id"])
        except Exception as exc:
            # the timer publishes it again, with the same event ids
            log.info("notification outcomes left to the announce timer", extra={
                "announcement_id": announcement["_id"], "reason": short_error(exc)})
        finally:
            self.in_flight.discard(announcement["_id"])
            self.places.release()

    def _drop_batch(self, announcement_ids):
        self.store.clear_announcements(announcement_ids)
        return [None] * len(announcement_ids)

    def stop(self, seconds):
        """Let the announcements under way end, for up to ``seconds``."""
        with eventlet.Timeout(seconds, False):
            self.pool.waitall()
