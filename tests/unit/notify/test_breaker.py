from services.notify.breaker import CLOSED, HALF_OPEN, OPEN, CircuitBreaker


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def breaker(clock, failures=3, reset_seconds=30):
    return CircuitBreaker(failures, reset_seconds, clock=clock)


def tripped(clock):
    """A breaker opened at 0 s, half-open from 30 s."""
    guard = breaker(clock)
    for _ in range(3):
        guard.failed()
    return guard


def test_gateway_failing_in_a_row_opens_it_and_nothing_is_sent_meanwhile():
    clock = Clock()
    guard = breaker(clock)
    for _ in range(3):
        assert guard.allow()
        guard.failed()
    assert guard.state == OPEN and not guard.allow()
    clock.now = 29
    assert not guard.allow()


def test_a_success_in_between_starts_the_count_again():
    guard = breaker(Clock())
    guard.failed()
    guard.failed()
    guard.succeeded()
    guard.failed()
    guard.failed()
    assert guard.state == CLOSED


def test_after_the_pause_one_trial_at_a_time_decides():
    clock = Clock()
    guard = tripped(clock)
    clock.now = 30
    assert guard.state == HALF_OPEN
    assert guard.allow()
    assert not guard.allow()  # the trial is running
    guard.failed()
    assert guard.state == OPEN and not guard.allow()
    clock.now = 60
    assert guard.allow()
    guard.succeeded()
    assert guard.state == CLOSED and guard.allow() and guard.allow()


def test_a_trial_that_says_nothing_about_the_gateway_lets_another_try():
    clock = Clock()
    guard = tripped(clock)
    clock.now = 30
    assert guard.allow()
    guard.inconclusive()
    assert guard.state == HALF_OPEN and guard.allow()
