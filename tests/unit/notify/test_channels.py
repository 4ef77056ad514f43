"""Channels against real peers: what each message carries for the gateway to
deduplicate on, and which answers count as delivered."""
import json

import pytest
import requests

from services.notify.channels import DeliveryFailed, Email, SignedWebhook, SmsGateway, WeComRobot
from tests.support.peers import http_peer, smtp_peer
from tests.support.polling import eventually
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
