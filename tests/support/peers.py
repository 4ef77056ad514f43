"""Real local peers for notify's channels, as separate processes."""
import json
import mailbox
import socket
import sys
from contextlib import contextmanager
from email import policy
from email.parser import BytesParser
from pathlib import Path

import requests

from devstack.processes import ManagedProcess, wait_until
from tests.support.ports import free_port


class HttpPeer:
    def __init__(self, port, record_path):
        self.url = f"http://127.0.0.1:{port}"
        self.record_path = Path(record_path)

    def received(self, path=None):
        if not self.record_path.exists():
            return []
        lines = [json.loads(line) for line in self.record_path.read_text(encoding="utf-8").splitlines()]
        return [line for line in lines if path is None or line["path"] == path]

    def fail_next(self, path, count):
        requests.post(f"{self.url}/_control", json={"path": path, "fail_next": count}, timeout=5).raise_for_status()


class SmtpPeer:
    def __init__(self, port, maildir):
        self.port = port
        self.maildir = Path(maildir)

    def messages(self):
        if not self.maildir.exists():
            return []
        parser = BytesParser(policy=policy.default)
        return [parser.parsebytes(message.as_bytes()) for message in mailbox.Maildir(self.maildir, create=False)]


def _reachable(url):
    try:
        requests.post(f"{url}/_control", json={"path": "/", "fail_next": 0}, timeout=1)
        return True
    except requests.RequestException:
        return False


@contextmanager
def http_peer(directory):
    port = free_port()
    process = ManagedProcess("http-peer", [sys.executable, "-m", "tests.support.http_peer", str(port), str(directory / "http.jsonl")],
                             directory / "http-peer.log").start()
    peer = HttpPeer(port, directory / "http.jsonl")
    try:
        wait_until(lambda: _reachable(peer.url), 15, "the HTTP peer answered", process=process)
        yield peer
    finally:
        process.stop()


@contextmanager
def smtp_peer(directory):
    port = free_port()
    maildir = directory / "maildir"
    process = ManagedProcess("smtp-peer", [sys.executable, "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{port}",
                                           "-c", "aiosmtpd.handlers.Mailbox", str(maildir)], directory / "smtp-peer.log").start()

    def listening():
        with socket.socket() as sock:
            return sock.connect_ex(("127.0.0.1", port)) == 0

    try:
        wait_until(listening, 15, "the SMTP peer listened", process=process)
        yield SmtpPeer(port, maildir)
    finally:
        process.stop()
