"""A circuit breaker per channel: a gateway that keeps failing is left alone for a
while, instead of taking every waiting message's attempts and the channel's
senders with it.

Not pybreaker: its ``call`` holds a lock for the whole guarded call, so under
eventlet a channel's sends would go out one at a time.
"""
import time

CLOSED = "closed"
OPEN = "open"
HALF_OPEN = "half_open"


class CircuitBreaker:
    """Closed: sends go. ``failures`` gateway failures in a row open it: no send
    for ``reset_seconds``. Then half-open: one trial send at a time, whose success
    closes the breaker and whose failure opens it again.

    Only failures of the gateway count (time-outs, 5xx, refused connections); a
    message the gateway rejects for its own sake (no phone number, a 400) says
    nothing about the gateway.
    """

    def __init__(self, failures, reset_seconds, clock=time.monotonic):
        self.failures_to_open = failures
        self.reset_seconds = reset_seconds
        self.clock = clock
        self.failures = 0
        self.opened_at = None
        self.trial_running = False
        self._state = CLOSED

    @property
    def state(self):
        if self._state == OPEN and self.clock() >= self.opened_at + self.reset_seconds:
            self._state = HALF_OPEN
        return self._state

    def allow(self):
        """May one more send start now? In half-open state this takes the one trial."""
        state = self.state
        if state == HALF_OPEN and not self.trial_running:
            self.trial_running = True
            return True
        return state == CLOSED

    def succeeded(self):
        self._state, self.failures, self.trial_running = CLOSED, 0, False

    def failed(self):
        self.failures += 1
        if self._state == HALF_OPEN or self.failures >= self.failures_to_open:
            self._state, self.opened_at = OPEN, self.clock()
        self.trial_running = False

    def inconclusive(self):
        """The send said nothing about the gateway; a trial may be tried again."""
        self.trial_running = False
