"""Reading JSON bodies: what a client sends is refused naming ``body``, never a 500."""
import pytest
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from wangge.http import ApiError, read_json_body


def request_with(raw):
    return Request(EnvironBuilder(method="POST", data=raw, content_type="application/json").get_environ())


@pytest.mark.parametrize("raw", [b'{"text": "\\ud800"}', b'{"\\udfff": 1}', b'{"a": ["ok", {"b": "x\\udc00y"}]}'])
def test_unpaired_surrogates_are_refused_naming_the_body(raw):
    with pytest.raises(ApiError) as refused:
        read_json_body(request_with(raw))
    assert "body" in refused.value.fields


def test_a_surrogate_pair_is_one_character():
    assert read_json_body(request_with(b'{"text": "\\ud83d\\ude00"}')) == {"text": "\U0001F600"}


def test_a_redirect_points_to_a_relative_path_never_the_clients_host():
    from werkzeug.routing import RequestRedirect

    from wangge.http import http_error_response

    response = http_error_response(RequestRedirect("http://evil.example/api/v1/cases?page=2"))
    assert response.status_code == 308
    assert response.headers["Location"] == "/api/v1/cases?page=2"
    assert "evil.example" not in response.get_data(as_text=True)
