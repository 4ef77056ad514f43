"""notification_sent waits in its notification while the broker will not take it:
the other recipients of the same event are sent to meanwhile, and the outcomes
are announced, once each, when the broker takes them again."""
import json
import os
import uuid
from datetime import datetime, timedelta
from urllib.parse import quote, unquote, urlsplit
from zoneinfo import ZoneInfo

import pytest
import requests
from pymongo import MongoClient

from tests.e2e.test_notify import peer_env, quiet_window
from tests.e2e.test_notify_once import all_sent, remind_members
from tests.support.broker import DEFAULT_MANAGEMENT_URL, drain, throwaway_vhost, watch_queue
from tests.support.peers import http_peer, smtp_peer
from tests.support.polling import eventually
from tests.support.services import running_platform, running_service
from wangge import events, topology

MANAGEMENT_API = os.environ.get("WANGGE_TEST_RABBIT_MANAGEMENT", DEFAULT_MANAGEMENT_URL) + "/api"
# notify may do everything but publish its own events
NO_ANNOUNCEMENTS = {"configure": ".*", "write": r"^(?!notify\.events$).*", "read": ".*"}
EVERYTHING = {"configure": ".*", "write": ".*", "read": ".*"}


class BrokerUser:
    """A user of the test vhost whose permissions a test changes (guest stays as it is)."""

    def __init__(self, amqp_uri):
        parts = urlsplit(amqp_uri)
        self.auth = (unquote(parts.username or "guest"), unquote(parts.password or "guest"))
        self.vhost = parts.path.lstrip("/")
        self.name, self.password = f"wangge_test_notify_{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
        self.uri = f"{parts.scheme}://{self.name}:{self.password}@{parts.hostname}:{parts.port or 5672}/{self.vhost}"

    def create(self, permissions):
        requests.put(f"{MANAGEMENT_API}/users/{self.name}", json={"password": self.password, "tags": ""},
                     auth=self.auth, timeout=10).raise_for_status()
        self.allow(permissions)

    def allow(self, permissions):
        requests.put(f"{MANAGEMENT_API}/permissions/{quote(unquote(self.vhost), safe='')}/{self.name}", json=permissions,
                     auth=self.auth, timeout=10).raise_for_status()

    def delete(self):
        requests.delete(f"{MANAGEMENT_API}/users/{self.name}", auth=self.auth, timeout=10)


@pytest.fixture(scope="module")
def platform(module_amqp_uri, mongo_uri, tmp_path_factory):
    directory = tmp_path_factory.mktemp("notify-announcements")
    user = BrokerUser(module_amqp_uri)
    user.create(NO_ANNOUNCEMENTS)
    try:
        with http_peer(directory) as http, smtp_peer(directory) as smtp:
            env = {**peer_env(http, smtp), **quiet_window(datetime.now(ZoneInfo("UTC")), timedelta(hours=2), timedelta(hours=1)),
                   "NOTIFY_ANNOUNCE_INTERVAL_SECONDS": "0.2"}
            with running_platform(["notify"], amqp_uri=user.uri, mongo_uri=mongo_uri, log_dir=directory,
                                  extra_env=env) as services:
                yield {"notify": services["notify"][0], "http": http, "amqp_uri": module_amqp_uri, "user": user}
    finally:
        user.delete()


def test_outcomes_the_broker_will_not_take_hold_up_no_recipient_and_go_out_later(platform):
    with watch_queue(platform["amqp_uri"], topology.events_exchange("notify"), events.NOTIFICATION_SENT) as watched:
        campaign_id = remind_members(platform, 5)
        sent = eventually(lambda: all_sent(platform["notify"], 5, campaign_id=campaign_id), timeout=20)
        assert {n["attempts"] for n in sent} == {1}
        assert drain(platform["amqp_uri"], watched, timeout=1) == []

        platform["user"].allow(EVERYTHING)
        announced = [json.loads(m.body) for m in drain(platform["amqp_uri"], watched, timeout=15, expected=5)]
        announced += [json.loads(m.body) for m in drain(platform["amqp_uri"], watched, timeout=2)]
    assert sorted(a["data"]["notification_id"] for a in announced) == sorted(n["id"] for n in sent)
    assert {a["data"]["status"] for a in announced} == {"sent"}


@pytest.fixture(scope="module")
def notify_without_timer(mongo_uri, tmp_path_factory):
    """Notify whose announce timer does not tick while a test runs, and its store, on a vhost
    of its own (the module's notify would take its events)."""
    directory = tmp_path_factory.mktemp("notify-prompt-announcements")
    database = f"notify_{uuid.uuid4().hex[:8]}"
    with throwaway_vhost() as amqp_uri, http_peer(directory) as http, smtp_peer(directory) as smtp, MongoClient(mongo_uri) as client:
        env = {**peer_env(http, smtp), **quiet_window(datetime.now(ZoneInfo("UTC")), timedelta(hours=2), timedelta(hours=1)),
               "NOTIFY_ANNOUNCE_INTERVAL_SECONDS": "3600"}
        with running_service("notify", amqp_uri=amqp_uri, mongo_uri=mongo_uri, log_dir=directory, database=database,
                             extra_env=env) as notify:
            yield {"notify": notify, "http": http, "amqp_uri": amqp_uri, "announcements": client[database]["announcements"]}


def test_outcomes_are_announced_as_soon_as_they_are_recorded_not_on_the_timer(notify_without_timer):
    platform = notify_without_timer
    with watch_queue(platform["amqp_uri"], topology.events_exchange("notify"), events.NOTIFICATION_SENT) as watched:
        campaign_id = remind_members(platform, 3)
        sent = eventually(lambda: all_sent(platform["notify"], 3, campaign_id=campaign_id), timeout=20)
        announced = [json.loads(m.body) for m in drain(platform["amqp_uri"], watched, timeout=15, expected=3)]
        announced += [json.loads(m.body) for m in drain(platform["amqp_uri"], watched, timeout=1)]
    assert sorted(a["data"]["notification_id"] for a in announced) == sorted(n["id"] for n in sent)
    # published, then dropped: nothing is left for the timer to publish again
    assert eventually(lambda: platform["announcements"].count_documents({}) == 0, timeout=10)
