"""A real HTTP server standing in for the WeCom robot, the SMS gateway and
webhook receivers: it records every request (JSON lines) and can be told to
fail the next N requests on a path.

    python -m tests.support.http_peer PORT RECORD_FILE

``POST /_control {"path": "/sms", "fail_next": 2}`` makes the next two
requests to /sms answer 500.
"""
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Peer(BaseHTTPRequestHandler):
    failures = {}
    lock = threading.Lock()
    record_path = None

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        path = self.path.split("?")[0]
        if path == "/_control":
            command = json.loads(body)
            with self.lock:
                self.failures[command["path"]] = int(command["fail_next"])
            return self.answer(200, {"ok": True})
        with self.lock:
            failing = self.failures.get(path, 0) > 0
            if failing:
                self.failures[path] -= 1
            with open(self.record_path, "a", encoding="utf-8") as record:
                record.write(json.dumps({
                    "path": path, "query": self.path.partition("?")[2], "headers": dict(self.headers),
                    "body": body.decode("utf-8"), "answered": 500 if failing else 200,
                }, ensure_ascii=False) + "\n")
        if failing:
            return self.answer(500, {"errcode": -1, "errmsg": "injected failure"})
        self.answer(200, {"errcode": 0, "errmsg": "ok"})

    def answer(self, status, payload):
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
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
