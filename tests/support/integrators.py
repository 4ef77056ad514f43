"""`wangge-admin integrators …` run as an operator runs it, against a test's own vhost,
the real broker's management API and a running intake (which keeps the Open311 keys)."""
import os
import subprocess
import sys
import uuid
from urllib.parse import quote

import requests
from kombu import Connection

from tests.support.broker import DEFAULT_MANAGEMENT_URL
from tests.support.services import authorized_session


def integrators_admin(vhost_uri, intake):
    """``run(*args, token=True, intake_url=None)``: the command's completed process, with a
    county administrator's token unless ``token`` is false."""
    vhost = requests.utils.unquote(vhost_uri.rsplit("/", 1)[1])
    env = {**os.environ, "AMQP_URI": vhost_uri, "RABBITMQ_VHOST": vhost, "INTAKE_URL": intake.base_url,
           "RABBITMQ_MANAGEMENT_URL": DEFAULT_MANAGEMENT_URL.replace("http://", "http://guest:guest@"),
           "WANGGE_API_TOKEN": authorized_session("county-admin").headers["Authorization"].split(" ", 1)[1]}

    def run(*args, token=True, intake_url=None):
        env_now = {**env, "INTAKE_URL": intake_url or env["INTAKE_URL"]}
        return subprocess.run([sys.executable, "-m", "wangge.admin", "integrators", *args], capture_output=True, text=True, timeout=60,
                              env=env_now if token else {key: value for key, value in env_now.items() if key != "WANGGE_API_TOKEN"})
    return run


def issued(answer):
    """(password, Open311 API key) of an ``add`` or ``rotate``: the password on the line after
    the account's, the key on the last line."""
    assert answer.returncode == 0, answer.stderr
    lines = answer.stdout.strip().splitlines()
    return lines[1], lines[-1]


def as_account(vhost_uri, source, password):
    vhost = vhost_uri.rsplit("/", 1)[1]
    return Connection(f"amqp://integrator-{source}:{quote(password)}@127.0.0.1:5672/{vhost}",
                      transport_options={"confirm_publish": True}, connect_timeout=5)


def new_source():
    """A system name of a test's own."""
    return f"t{uuid.uuid4().hex[:10]}"


def remove_account(source):
    """Users are the broker's, not the vhost's: a test's account goes when the test does."""
    requests.delete(f"{DEFAULT_MANAGEMENT_URL}/api/users/integrator-{source}", auth=("guest", "guest"), timeout=10)
