import time

import requests


def eventually(check, timeout=10.0, interval=0.1):
    """Poll ``check`` until it returns something truthy; return that, or fail
    with the last value seen. A read of ``check``'s that times out is asked again:
    the shared test store pauses now and then (its checkpoint), and a read caught
    in a pause says nothing about the condition."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = check()
        except requests.Timeout as timed_out:
            value = timed_out
        else:
            if value:
                return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last value: {value!r})")
        time.sleep(interval)


def once_registry_read(call, timeout=90.0, interval=1.0):
    """``call()``'s HTTP response once study (or another service reading routing's registry)
    could read the registry. It answers 503 ``registry_unavailable`` while routing does not
    answer in time, as just after a registry load when the shared test store pauses for a
    few seconds; such an answer says "try again shortly", and an operator would."""
    deadline = time.monotonic() + timeout
    while True:
        response = call()
        unavailable = response.status_code == 503 and "registry_unavailable" in response.text
        if not unavailable or time.monotonic() > deadline:
            return response
        time.sleep(interval)
