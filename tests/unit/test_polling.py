"""The tests' own waiting helpers."""
import requests

import pytest

from tests.support.polling import eventually, once_registry_read


def response(status, body):
    answer = requests.Response()
    answer.status_code = status
    answer._content = body.encode()
    return answer


def test_a_call_is_made_again_while_the_registry_cannot_be_read_and_the_first_other_answer_returned():
    answers = iter([response(503, '{"error": "registry_unavailable"}')] * 2 + [response(200, "{}"), response(200, "{}")])
    calls = []

    def call():
        calls.append(1)
        return next(answers)

    assert once_registry_read(call, interval=0).status_code == 200
    assert len(calls) == 3


def test_other_errors_are_returned_at_once_and_an_unreadable_registry_once_the_time_is_up():
    refused = response(503, '{"error": "store_unavailable"}')
    assert once_registry_read(lambda: refused, interval=0) is refused
    unavailable = response(503, '{"error": "registry_unavailable"}')
    assert once_registry_read(lambda: unavailable, timeout=0.05, interval=0.01) is unavailable


def test_a_check_whose_read_times_out_is_asked_again_until_it_passes():
    answers = iter([requests.ReadTimeout("paused"), requests.ConnectTimeout("paused"), None, "met"])

    def check():
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert eventually(check, timeout=5, interval=0) == "met"


def test_a_check_that_only_times_out_fails_once_the_time_is_up_naming_the_timeout_and_other_errors_at_once():
    def timing_out():
        raise requests.ReadTimeout("still paused")

    with pytest.raises(AssertionError, match="still paused"):
        eventually(timing_out, timeout=0.05, interval=0.01)

    def refused():
        raise requests.ConnectionError("refused")

    with pytest.raises(requests.ConnectionError):
        eventually(refused, timeout=5, interval=0)
