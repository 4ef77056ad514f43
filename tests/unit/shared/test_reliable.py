import pytest
from marshmallow import ValidationError

from wangge.reliable import DEFAULT_RETRY, PoisonMessage, describe_failure, is_retriable, retry_delay


def test_retry_delay_doubles_then_caps():
    policy = {**DEFAULT_RETRY, "DELAY_SECONDS": 2, "MAX_DELAY_SECONDS": 10}
    assert [retry_delay(attempt, policy) for attempt in range(1, 6)] == [2, 4, 8, 10, 10]


@pytest.mark.parametrize(
    "exc, retriable",
    [(ValidationError({"text": ["Missing"]}), False), (PoisonMessage("bad body"), False),
     (ConnectionError("store down"), True), (KeyError("x"), True)],
)
def test_only_failures_of_the_moment_are_retried(exc, retriable):
    assert is_retriable(exc) is retriable


def test_validation_reason_names_the_fields_as_json():
    reason = describe_failure(ValidationError({"text": ["Missing data for required field."]}))
    assert reason == 'invalid message: {"text": ["Missing data for required field."]}'


def test_other_reasons_name_the_exception():
    assert describe_failure(TimeoutError("store timed out")) == "TimeoutError: store timed out"
