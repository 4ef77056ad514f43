"""Starting, watching and stopping the platform's processes (used by ``make run``
and by the end-to-end tests, which run the services exactly the same way)."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests
from pymongo import MongoClient

ROOT = Path(__file__).resolve().parent.parent
SERVICE_PORTS = {"intake": 8001, "routing": 8002, "notify": 8003, "study": 8004, "care": 8005}


def available_services():
    """The services that exist so far, in pipeline order."""
    return [name for name in SERVICE_PORTS if (ROOT / "services" / name / "service.py").exists()]


def service_env(name, *, amqp_uri, mongo_uri, port, database=None, host="127.0.0.1", extra=None):
    """The environment overrides a service's config.yml reads (see its placeholders)."""
    prefix = name.upper()
    env = {
        "AMQP_URI": amqp_uri,
        "MONGO_URI": mongo_uri,
        f"{prefix}_HTTP_ADDRESS": f"{host}:{port}",
        f"{prefix}_MONGO_DATABASE": database or f"wangge_{name}",
    }
    env.update(extra or {})
    return env


class ManagedProcess:
    def __init__(self, name, argv, log_path, env=None, detached=False):
        self.name = name
        self.argv = argv
        self.log_path = Path(log_path)
        self.env = {**os.environ, **(env or {})}
        self.detached = detached
        self.process = None

    def start(self):
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                self.argv, stdout=log, stderr=subprocess.STDOUT, env=self.env, cwd=ROOT,
                start_new_session=self.detached,
            )
        return self

    @property
    def pid(self):
        return self.process.pid

    def exited(self):
        return self.process.poll() is not None

    def stop(self, timeout=15):
        if self.process is None or self.exited():
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def log_tail(self, lines=40):
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


def start_store(port, storage_path, log_path, detached=False, env=None):
    argv = [sys.executable, "-m", "secantus", "--host", "127.0.0.1", "--port", str(port),
            "--storage-path", str(storage_path), "--sync-on-commit", "--log-level", "WARNING"]
    return ManagedProcess("store", argv, log_path, env=env, detached=detached).start()


def start_service(name, env, log_path, detached=False):
    argv = [sys.executable, "-m", "wangge.launch", name]
    return ManagedProcess(name, argv, log_path, env=env, detached=detached).start()


def store_answers(uri):
    client = MongoClient(uri, serverSelectionTimeoutMS=500)
    try:
        client.admin.command("ping")
        return True
    except Exception:
        return False
    finally:
        client.close()


def wait_until(check, timeout, what, process=None, interval=0.2):
    deadline = time.monotonic() + timeout
    while not check():
        if process is not None and process.exited():
            raise RuntimeError(f"{process.name} exited with {process.process.returncode} before {what}:\n{process.log_tail()}")
        if time.monotonic() > deadline:
            tail = f":\n{process.log_tail()}" if process is not None else ""
            raise RuntimeError(f"timed out after {timeout}s waiting for {what}{tail}")
        time.sleep(interval)


def http_ok(url, auth=None):
    try:
        return requests.get(url, timeout=2, auth=auth).status_code == 200
    except requests.RequestException:
        return False
