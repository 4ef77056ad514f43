"""Every notify setting can be overridden from the environment, as the README says."""
from services.notify.delivery import quiet_roles
from wangge.config import load_service_config


def test_quiet_hours_roles_and_the_county_clock_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("QUIET_HOURS_ROLES", "resident,member,worker")
    monkeypatch.setenv("WANGGE_TIMEZONE", "Asia/Urumqi")
    config = load_service_config("notify")
    assert quiet_roles(config["QUIET_HOURS"]) == {"resident", "member", "worker"}
    assert config["TIMEZONE"] == "Asia/Urumqi"
