"""A service that cannot reach the broker or the store says so in one line and exits
non-zero; a running one tells an operator what each of its green threads is doing."""
import json
import os
import signal
import subprocess
import sys
import time

import requests

from devstack.processes import http_ok
from tests.support.polling import eventually
from tests.support.ports import free_port
from tests.support.services import running_service


def launch_intake(amqp_uri, mongo_uri):
    env = {"AMQP_URI": amqp_uri, "MONGO_URI": mongo_uri, "INTAKE_HTTP_ADDRESS": f"127.0.0.1:{free_port()}", "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, "-m", "wangge.launch", "intake"], env=env, capture_output=True, text=True, timeout=60)


def test_unreachable_broker_is_one_line_naming_the_uri(mongo_uri):
    port = free_port()
    result = launch_intake(f"amqp://guest:secret@127.0.0.1:{port}/", mongo_uri)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert f"127.0.0.1:{port}" in lines[0] and "RabbitMQ" in lines[0]
    assert "secret" not in lines[0]


def test_unreachable_store_is_one_line_naming_the_uri(amqp_uri):
    port = free_port()
    result = launch_intake(amqp_uri, f"mongodb://wangge:secret@127.0.0.1:{port}/?retryWrites=false")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert f"127.0.0.1:{port}" in lines[0] and "store" in lines[0]
    assert "secret" not in lines[0]


def test_a_running_consumer_is_seen_looking_for_deliveries(amqp_uri, mongo_uri, tmp_path):
    with running_service("notify", amqp_uri=amqp_uri, mongo_uri=mongo_uri, log_dir=tmp_path) as notify:
        def idle_seconds():
            answer = requests.get(notify.url("/health/live"), timeout=5)
            assert answer.status_code == 200 and answer.json()["status"] == "alive", answer.text
            return answer.json()["consumer_idle_seconds"]
        readings = []
        for _ in range(3):
            time.sleep(1.5)
            readings.append(idle_seconds())
        # the consumer's loop passes at least once a second while it waits for deliveries
        assert all(0 <= reading < 3 for reading in readings), readings


def test_sigusr1_logs_every_green_thread_and_the_service_goes_on(amqp_uri, mongo_uri, tmp_path):
    with running_service("notify", amqp_uri=amqp_uri, mongo_uri=mongo_uri, log_dir=tmp_path) as notify:
        os.kill(notify.process.process.pid, signal.SIGUSR1)

        def stacks():
            records = [json.loads(line) for line in notify.process.log_tail(5000).splitlines() if '"green thread stack"' in line]
            return records if any("kombu" in record["stack"] for record in records) else None

        records = eventually(stacks, timeout=20)
        assert all(record["level"] == "WARNING" and record["green_thread"] for record in records)
        # the consumer's connection, waiting for deliveries, is among them
        assert any("drain_events" in record["stack"] for record in records), [record["stack"] for record in records]
        assert not notify.process.exited() and http_ok(notify.url("/health"))
