"""An HTTP answer an entrypoint returns (not raises) counts by its status."""
import pytest
from werkzeug.wrappers import Response

from wangge.metrics import answered_outcome


@pytest.mark.parametrize(("result", "outcome"), [
    ({"status": "ok"}, "ok"),
    ((201, {"tracking_no": "YT-1"}), "ok"),
    (Response("[]", status=200), "ok"),
    (Response('[{"code": 403}]', status=403), "rejected"),  # Open311's errors are answers in the standard's form
    ((404, {"error": "not_found"}), "rejected"),
    ((503, {"status": "unavailable"}), "error"),
    (Response("stuck", status=503), "error"),
    (None, "ok"),
])
def test_an_answers_status_decides_its_outcome(result, outcome):
    assert answered_outcome(result) == outcome
