"""Channels against real peers: what each message carries for the gateway to
deduplicate on, and which answers count as delivered."""
import json
from urllib.parse import parse_qs

import pytest
import requests

from services.notify.channels import DeliveryFailed, Email, SignedWebhook, SmsGateway, WeComRobot
from tests.support.peers import http_peer, smtp_peer
from tests.support.polling import eventually
from tests.support.ports import free_port
from tests.unit.notify.factories import reminder


@pytest.fixture(scope="module")
def peers(tmp_path_factory):
    directory = tmp_path_factory.mktemp("channel-peers")
    with http_peer(directory) as http, smtp_peer(directory) as smtp:
        yield http, smtp


def control(peer, **command):
    requests.post(f"{peer.url}/_control", json=command, timeout=5).raise_for_status()


@pytest.mark.parametrize("channel", ["sms", "webhook"])
def test_every_attempt_at_a_message_carries_the_same_idempotency_key(peers, channel):
    http, _ = peers
    path = f"/{channel}-ids"
    gateway = (SmsGateway if channel == "sms" else SignedWebhook)({"URL": f"{http.url}{path}"}, timeout=5)
    notification = reminder(channel)
    control(http, path=path, fail_next=1)
    with pytest.raises(DeliveryFailed):
        gateway.send(notification)
    gateway.send(notification)
    received = http.received(path)
    assert [r["headers"]["Idempotency-Key"] for r in received] == [notification["_id"]] * 2
    assert {json.loads(r["body"])["id"] for r in received} == {notification["_id"]}


def test_every_attempt_at_an_email_carries_the_same_message_id(peers):
    _, smtp = peers
    mailer = Email({"HOST": "127.0.0.1", "PORT": smtp.port, "FROM": "wangge@example.gov.cn"}, timeout=5)
    notification = reminder("email")
    mailer.send(notification)
    mailer.send(notification)
    mails = eventually(lambda: (lambda found: found if len(found) == 2 else None)(
        [m for m in smtp.messages() if m["To"] == "member@example.org"]))
    assert mails[0]["Message-ID"] == mails[1]["Message-ID"]


def test_wecom_answering_200_with_a_page_that_is_not_json_is_a_failure_worth_retrying(peers):
    http, _ = peers
    control(http, path="/wecom-proxy", answer_next=1, status=200, body="<html>502 Bad Gateway</html>")
    robot = WeComRobot({"URL": f"{http.url}/wecom-proxy", "DEFAULT_KEY": "k"}, timeout=5)
    with pytest.raises(DeliveryFailed, match="not JSON") as raised:
        robot.send(reminder("wecom"))
    assert raised.value.retriable
    robot.send(reminder("wecom"))


def group_notice(group):
    """A campaign's material for one WeChat group, as notify stores it."""
    notification = reminder("wecom")
    return {**notification, "recipient": {"role": "grid_group", "key": f"group:{group}", "name": "悦山网格", "group": group}}


def test_the_robot_key_travels_as_the_key_parameter_whatever_characters_it_holds(peers):
    http, _ = peers
    key = "k&msgtype=markdown#x y"
    WeComRobot({"URL": f"{http.url}/wecom-params", "DEFAULT_KEY": key}, timeout=5).send(reminder("wecom"))
    [posted] = http.received("/wecom-params")
    assert parse_qs(posted["query"]) == {"key": [key]}


def test_a_grids_group_posts_through_its_own_robot_and_everything_else_through_the_default(peers, tmp_path):
    http, _ = peers
    keys = tmp_path / "robots.yml"
    keys.write_text("wx-1: robot-of-wx-1\n", encoding="utf-8")
    robot = WeComRobot({"URL": f"{http.url}/wecom-groups", "DEFAULT_KEY": "county-robot", "ROBOT_KEYS_FILE": str(keys)}, timeout=5)
    robot.send(group_notice("wx-1"))
    robot.send(group_notice("wx-2"))
    robot.send(reminder("wecom"))
    assert [parse_qs(r["query"])["key"] for r in http.received("/wecom-groups")] == [["robot-of-wx-1"], ["county-robot"], ["county-robot"]]


def test_without_a_robot_for_the_group_nor_a_default_nothing_is_sent(peers):
    http, _ = peers
    with pytest.raises(DeliveryFailed, match="no WeCom robot") as raised:
        WeComRobot({"URL": f"{http.url}/wecom-none", "DEFAULT_KEY": ""}, timeout=5).send(group_notice("wx-9"))
    assert not raised.value.retriable
    assert http.received("/wecom-none") == []


@pytest.mark.parametrize("key", ["SECRET-robot-key", "SECRET key/with+signs"])
def test_a_failed_post_names_no_robot_key(key):
    unreachable = f"http://127.0.0.1:{free_port()}/cgi-bin/webhook/send"  # nothing listens: requests names the URL it tried
    with pytest.raises(DeliveryFailed) as raised:
        WeComRobot({"URL": unreachable, "DEFAULT_KEY": key}, timeout=5).send(reminder("wecom"))
    error = str(raised.value)
    assert "ConnectionError" in error and "key=***" in error
    assert "SECRET" not in error
    assert raised.value.__cause__ is None and raised.value.__suppress_context__
