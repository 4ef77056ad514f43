"""A service that cannot reach the broker or the store says so in one line and exits non-zero."""
import subprocess
import sys

from tests.support.ports import free_port


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
