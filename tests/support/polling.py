import time


def eventually(check, timeout=10.0, interval=0.1):
    """Poll ``check`` until it returns something truthy; return that, or fail
    with the last value seen."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last value: {value!r})")
        time.sleep(interval)
