"""The web app's local server routes /api/v1/... as deploy/gateway/nginx.conf does."""
import pytest

from devstack.web import GATEWAY_CONF, gateway_locations, service_for

# Every API path the web app calls (web/src/api/), and the service that answers it.
APP_PATHS = [
    ("/api/v1/requests", "intake"),
    ("/api/v1/requests/YT-20261129-7KQ4-M9XD", "intake"),
    ("/api/v1/workers/w-zc-nanmen-02-1/cases", "routing"),
    ("/api/v1/cases/C-1", "routing"),
    ("/api/v1/cases", "routing"),
    *((f"/api/v1/cases/C-1/{action}", "routing")
      for action in ("acknowledge", "notes", "steps", "resolve", "escalate", "return", "dispatch", "place")),
    ("/api/v1/dispatch-queue", "routing"),
    ("/api/v1/taxonomy", "routing"),
    ("/api/v1/grids", "routing"),
    ("/api/v1/grids/YT-ZC-NANMEN-02", "routing"),
    ("/api/v1/follow-up/token", "routing"),
]


@pytest.mark.parametrize(("path", "service"), APP_PATHS)
def test_every_path_the_app_calls_reaches_its_service(path, service):
    locations, _ = gateway_locations(GATEWAY_CONF.read_text())
    assert service_for(path, locations) == service


def test_nginx_precedence_exact_then_regex_then_prefix():
    conf = """
      set $a a:1;
      set $b b:2;
      location = /api/v1/things { proxy_pass http://$a; }
      location /api/v1/things   { proxy_pass http://$a; }
      location ~ ^/api/v1/(things/special|other) { proxy_pass http://$b; }
    """
    locations, ports = gateway_locations(conf)
    assert ports == {"a": 1, "b": 2}
    assert service_for("/api/v1/things", locations) == "a"
    assert service_for("/api/v1/things/special", locations) == "b"  # a regex beats a plain prefix
    assert service_for("/api/v1/things/1", locations) == "a"
    assert service_for("/api/v1/nothing", locations) is None
