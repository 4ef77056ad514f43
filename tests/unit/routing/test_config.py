"""Routing's config file: every value can be set from the environment."""
import re

import yaml

from services.routing import sla
from wangge.config import load_service_config, service_config_path

PLACEHOLDER = re.compile(r"^\$\{[A-Z][A-Z0-9_]*:[^{}]*\}$")


def leaves(node, path=""):
    if isinstance(node, dict):
        for key, value in node.items():
            yield from leaves(value, f"{path}.{key}" if path else key)
    else:
        yield path, node


def test_every_value_names_its_environment_variable():
    with open(service_config_path("routing"), encoding="utf-8") as config_file:
        raw = yaml.load(config_file, Loader=yaml.BaseLoader)  # placeholders as written
    without = [path for path, value in leaves(raw) if not PLACEHOLDER.match(value)]
    assert without == []


def test_category_and_urgent_limits_follow_the_environment(monkeypatch):
    monkeypatch.setenv("SLA_SAFETY_FIRST_RESPONSE_MINUTES", "15")
    monkeypatch.setenv("SLA_URGENT_RESOLUTION_HOURS_GRID", "12")
    config = load_service_config("routing")["SLA"]
    assert config["CATEGORIES"]["safety"]["FIRST_RESPONSE_MINUTES"] == 15
    assert sla.policy_for(config, "safety", urgent=False).first_response.total_seconds() == 15 * 60
    assert sla.policy_for(config, "roads", urgent=True).resolution_in_grid.total_seconds() == 12 * 3600


def test_a_category_limit_set_empty_falls_back_to_the_default(monkeypatch):
    monkeypatch.setenv("SLA_SAFETY_FIRST_RESPONSE_MINUTES", "")
    monkeypatch.setenv("SLA_FIRST_RESPONSE_MINUTES", "90")
    config = load_service_config("routing")["SLA"]
    assert sla.policy_for(config, "safety", urgent=False).first_response.total_seconds() == 90 * 60
