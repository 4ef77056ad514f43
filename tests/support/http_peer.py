"""A real HTTP server standing in for the WeCom robot, the SMS gateway and
webhook receivers: it records every request (JSON lines) and can be told to
fail the next N requests on a path.

    python -m tests.support.http_peer PORT RECORD_FILE

``POST /_control {"path": "/sms", "fail_next": 2}`` makes the next two
requests to /sms answer 500. Other controls for a path (any combination):

* ``"answer_next": 2, "status": 200, "body": "<html>…"``: the next two requests
  get that status and raw body (a proxy's error page, say);
* ``"delay_seconds": 0.5``: every request waits that long before its answer;
* ``"hold": true`` / ``"hold": false``: requests wait (at most two minutes)
  until the path is released;
* ``"dedup_header": "Idempotency-Key"``: the path deduplicates like a gateway
  that honours the header: a request whose key was answered 2xx before is
  answered 200 again and recorded with ``"duplicate": true``.
"""
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HOLD_LIMIT_SECONDS = 120


class Peer(BaseHTTPRequestHandler):
    failures = {}
    canned = {}  # path -> [remaining, status, body]
    delays = {}
    releases = {}  # path -> threading.Event, cleared while the path is held
    dedup_headers = {}
    delivered_keys = {}
    lock = threading.Lock()
    record_path = None

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        path = self.path.split("?")[0]
        if path == "/_control":
            with self.lock:
                self.control(json.loads(body))
            return self.answer(200, {"ok": True})
        with self.lock:
            failing = self.failures.get(path, 0) > 0
            if failing:
                self.failures[path] -= 1
            canned = self.canned.get(path)
            canned = canned if canned and canned[0] > 0 and not failing else None
            if canned:
                canned[0] -= 1
            status = 500 if failing else canned[1] if canned else 200
            key = self.headers.get(self.dedup_headers[path]) if path in self.dedup_headers else None
            delivered = self.delivered_keys.setdefault(path, set())
            duplicate = key is not None and key in delivered
            if key is not None and status < 300:
                delivered.add(key)
            with open(self.record_path, "a", encoding="utf-8") as record:
                record.write(json.dumps({
                    "path": path, "query": self.path.partition("?")[2], "headers": dict(self.headers),
                    "body": body.decode("utf-8"), "answered": status, "duplicate": duplicate, "at": time.time(),
                }, ensure_ascii=False) + "\n")
            delay = self.delays.get(path, 0)
            release = self.releases.get(path)
        if delay:
            time.sleep(delay)
        if release is not None:
            release.wait(HOLD_LIMIT_SECONDS)
        if failing:
            return self.answer(500, {"errcode": -1, "errmsg": "injected failure"})
        if canned:
            return self.answer_raw(canned[1], canned[2].encode("utf-8"), "text/html")
        self.answer(200, {"errcode": 0, "errmsg": "ok"})

    def control(self, command):
        path = command["path"]
        if "fail_next" in command:
            self.failures[path] = int(command["fail_next"])
        if "answer_next" in command:
            self.canned[path] = [int(command["answer_next"]), int(command.get("status", 200)), command.get("body", "")]
        if "delay_seconds" in command:
            self.delays[path] = float(command["delay_seconds"])
        if "dedup_header" in command:
            self.dedup_headers[path] = command["dedup_header"]
        if command.get("hold") is True:
            self.releases.setdefault(path, threading.Event()).clear()
        elif command.get("hold") is False and path in self.releases:
            self.releases.pop(path).set()

    def answer(self, status, payload):
        self.answer_raw(status, json.dumps(payload).encode(), "application/json")

    def answer_raw(self, status, data, content_type):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def main():
    port, Peer.record_path = int(sys.argv[1]), sys.argv[2]
    ThreadingHTTPServer(("127.0.0.1", port), Peer).serve_forever()


if __name__ == "__main__":
    main()
