"""A gateway that hangs or fails holds up its own messages and nothing else: the
event handlers and HTTP never wait on a send, each channel sends from a pool of
its own, and a breaker leaves a failing gateway alone while its messages wait."""
import json
from collections import Counter
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import requests

from tests.e2e.test_notify import peer_env, quiet_window
from tests.e2e.test_notify_once import all_sent, control, remind_members, sms_requests, warn_worker
from tests.support.peers import http_peer, smtp_peer
from tests.support.polling import eventually
from tests.support.services import running_platform


@pytest.fixture(scope="module")
def platform(module_amqp_uri, mongo_uri, tmp_path_factory):
    directory = tmp_path_factory.mktemp("notify-isolation")
    with http_peer(directory) as http, smtp_peer(directory) as smtp:
        env = {**peer_env(http, smtp), **quiet_window(datetime.now(ZoneInfo("UTC")), timedelta(hours=2), timedelta(hours=1)),
               # a hanging gateway holds each send for up to 30 s
               "NOTIFY_HTTP_TIMEOUT_SECONDS": "30", "DELIVERY_MAX_ATTEMPTS": "5",
               "NOTIFY_BREAKER_FAILURES": "3", "NOTIFY_BREAKER_RESET_SECONDS": "2"}
        with running_platform(["notify"], amqp_uri=module_amqp_uri, mongo_uri=mongo_uri, log_dir=directory,
                              extra_env=env) as services:
            yield {"notify": services["notify"], "http": http, "amqp_uri": module_amqp_uri}


def health(service):
    return requests.get(service.url("/health"), timeout=10)


def test_hanging_sms_gateway_holds_up_neither_wecom_notices_nor_health(platform):
    service = platform["notify"][0]
    control(platform["http"], path="/sms", hold=True)
    try:
        # more texts than the service has workers, each its own event
        campaigns = [remind_members(platform, 1) for _ in range(12)]
        eventually(lambda: platform["http"].received("/sms"), timeout=15)
        warned = [warn_worker(platform) for _ in range(5)]
        eventually(lambda: all(any(t in r["body"] for r in platform["http"].received("/wecom")) for t in warned), timeout=15)
        assert all(health(service).status_code == 200 for _ in range(5))
    finally:
        control(platform["http"], path="/sms", hold=False)
    texts = [eventually(lambda c=c: all_sent(service, 1, campaign_id=c), timeout=60)[0] for c in campaigns]
    assert set(Counter(json.loads(r["body"])["id"] for r in sms_requests(platform, {t["id"] for t in texts})).values()) == {1}


def test_failing_sms_gateway_is_left_alone_while_its_texts_wait_with_their_attempts(platform):
    service = platform["notify"][0]
    control(platform["http"], path="/sms", fail_next=1000)
    try:
        campaign_id = remind_members(platform, 10)
        eventually(lambda: health(service).json()["channels"]["sms"] == "open", timeout=15)
        failed_while_down = [r for r in platform["http"].received("/sms") if r["answered"] == 500]
    finally:
        control(platform["http"], path="/sms", fail_next=0)
    sent = eventually(lambda: all_sent(service, 10, campaign_id=campaign_id), timeout=30)
    # the breaker kept most texts from being tried against the failing gateway
    assert len(failed_while_down) < len(sent)
    assert sum(n["attempts"] for n in sent) < 2 * len(sent)
    assert health(service).json()["channels"]["sms"] == "closed"
