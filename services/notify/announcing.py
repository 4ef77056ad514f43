"""Publishing a send's outcomes (``notification_sent``, ``notification_failed``) as
soon as they are recorded.

The outcome events of a batch of sends are stored in one announcement before the
outcomes are recorded (``outgoing.deliver``): a process that dies in between
announces them twice, never not at all. The announcement is reserved here before it
is stored, published right after the outcomes are recorded, beside the sends, and
then dropped, the drops of concurrent batches in one write. The announce timer leaves
alone what is reserved. No send waits for the broker: with every place taken the
announcement is left to the timer at once, as is one the broker refuses or does not
confirm within ``CONFIRM_TIMEOUT_SECONDS``.
"""
import logging
from contextlib import contextmanager

import eventlet
from eventlet.greenpool import GreenPool

from wangge.logs import short_error
from wangge.mongo import GroupCommit

log = logging.getLogger(__name__)

# how long a publish waits for the broker's confirm (nameko's publisher then tries again a
# few times) before its announcement is left to the timer
CONFIRM_TIMEOUT_SECONDS = 10


class Announcer:
    """Publishes an announcement's events with ``publish(event_type, event)`` and drops it,
    at most ``places`` at once; ``in_flight``: the ids reserved (stored or about to be)."""

    def __init__(self, store, publish, places):
        self.store = store
        self.publish = publish
        self.pool = GreenPool(places)
        self.in_flight = set()
        self._drop = GroupCommit(self._drop_batch)

    @contextmanager
    def announcing(self, announcement):
        """Around storing ``announcement`` and recording the outcomes it announces: reserved
        before, published once they are recorded, released if recording fails."""
        self.reserve(announcement["_id"])
        try:
            yield
        except BaseException:
            self.release(announcement["_id"])
            raise
        self.soon(announcement)

    def reserve(self, announcement_id):
        self.in_flight.add(announcement_id)

    def release(self, announcement_id):
        self.in_flight.discard(announcement_id)

    def soon(self, announcement):
        """``False`` if it is left to the timer (every place taken)."""
        if not self.pool.free():
            self.release(announcement["_id"])
            return False
        self.pool.spawn_n(self._announce, announcement)
        return True

    def _announce(self, announcement):
        try:
            for event in announcement["events"]:
                self.publish(event["event_type"], event)
            self._drop(announcement["_id"])
        except Exception as exc:
            # the timer publishes it again, with the same event ids (it warns if it cannot)
            log.info("notification outcomes left to the announce timer", extra={
                "announcement_id": announcement["_id"], "reason": short_error(exc)})
        finally:
            self.release(announcement["_id"])

    def _drop_batch(self, announcement_ids):
        self.store.clear_announcements(announcement_ids)
        return [None] * len(announcement_ids)

    def stop(self, seconds):
        """Let the announcements under way end, for up to ``seconds``."""
        with eventlet.Timeout(seconds, False):
            self.pool.waitall()
