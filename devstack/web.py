"""The web app under one origin with the API, as production's gateway serves them.

``make run`` builds ``web/`` when its sources changed (``npm ci`` from the lockfile,
``vite build``) and serves ``web/dist`` on http://127.0.0.1:8080: files as they are,
any other path the app's ``index.html`` (history-mode routes such as
``/track/YT-…`` or ``/report/<grid_id>`` work as links), ``/app-config.json`` the
app's run-time settings, and ``/api/v1/...`` proxied to the service the gateway sends
it to. Which service answers which path is read from ``deploy/gateway/nginx.conf``
itself, so the two cannot disagree.

    python -m devstack.web --port 8080 --upstream intake=http://127.0.0.1:8001 ... \
        --oidc-authority http://127.0.0.1:8090
"""
import argparse
import json
import mimetypes
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import requests

from devstack.processes import ROOT, ManagedProcess, http_ok, wait_until

WEB_DIR = ROOT / "web"
DIST_DIR = WEB_DIR / "dist"
GATEWAY_CONF = ROOT / "deploy" / "gateway" / "nginx.conf"
WEB_CLIENT = "wangge-web"
WEB_SCOPE = "openid profile wangge"
# What goes into a build: newer than dist/index.html means build again.
BUILD_INPUTS = ("src", "public", "index.html", "package.json", "package-lock.json", "vite.config.ts", "tsconfig.json")
# Hop-by-hop headers (RFC 9110 7.6.1) and those the proxy sets itself.
NOT_FORWARDED = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
                 "transfer-encoding", "upgrade", "host", "content-length", "content-encoding"}
MAX_BODY = 16 * 1024 * 1024  # the gateway's largest (the registry)


# -- the gateway's path table --------------------------------------------------------

@dataclass(frozen=True)
class Location:
    modifier: str  # "=", "^~", "~", "~*" or "" (a prefix), as nginx spells them
    pattern: str
    service: str

    def matches(self, path):
        if self.modifier == "=":
            return path == self.pattern
        if self.modifier in ("", "^~"):
            return path.startswith(self.pattern)
        return re.search(self.pattern, path, re.IGNORECASE if self.modifier == "~*" else 0) is not None


# what the gateway sends to the services (the rest is the web app, sign-in and its own answers)
SERVICE_PATHS = ("/api/", "/open311/", "/wecom/")
_SET_UPSTREAM = re.compile(r"^\s*set\s+\$(\w+)\s+([\w.-]+):(\d+)\s*;", re.MULTILINE)
_LOCATION = re.compile(r"^\s*location\s+(=|\^~|~\*?)?\s*(\S+)\s*\{([^{}]*)\}", re.MULTILINE)
_PROXY_PASS = re.compile(r"proxy_pass\s+http://\$(\w+)\s*;")


def gateway_locations(conf_text):
    """The ``location`` blocks of the gateway that proxy ``SERVICE_PATHS`` to a service,
    in file order: [Location], and the services' ports ({service: port})."""
    ports = {name: int(port) for name, _, port in _SET_UPSTREAM.findall(conf_text)}
    locations = []
    for modifier, pattern, body in _LOCATION.findall(conf_text):
        target = _PROXY_PASS.search(body)
        if target and target.group(1) in ports and any(prefix in pattern for prefix in SERVICE_PATHS):
            locations.append(Location(modifier or "", pattern, target.group(1)))
    return locations, ports


def service_for(path, locations):
    """The service nginx would pick for ``path``: an exact match; else the longest
    prefix if it is ``^~``; else the first regular expression that matches; else the
    longest prefix; None if nothing matches."""
    for location in locations:
        if location.modifier == "=" and location.matches(path):
            return location.service
    prefixes = [loc for loc in locations if loc.modifier in ("", "^~") and loc.matches(path)]
    longest = max(prefixes, key=lambda loc: len(loc.pattern), default=None)
    if longest is not None and longest.modifier == "^~":
        return longest.service
    for location in locations:
        if location.modifier in ("~", "~*") and location.matches(path):
            return location.service
    return longest.service if longest is not None else None


def local_upstreams(conf_text=None):
    """Each service on 127.0.0.1 at the port the gateway names for it (the ones ``make run`` uses)."""
    _, ports = gateway_locations(conf_text or GATEWAY_CONF.read_text())
    return {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}


# -- building ---------------------------------------------------------------------------

def node_problem():
    if not shutil.which("node") or not shutil.which("npm"):
        return "Node.js is not installed (the web app needs node 20.19+ and npm)"
    return None


def _newest_input():
    newest = 0.0
    for name in BUILD_INPUTS:
        path = WEB_DIR / name
        files = path.rglob("*") if path.is_dir() else [path]
        newest = max([newest, *(f.stat().st_mtime for f in files if f.is_file())])
    return newest


def install_packages(say):
    """``npm ci`` from the lockfile, again whenever the lockfile changes."""
    stamp = WEB_DIR / "node_modules" / ".installed"
    lock = WEB_DIR / "package-lock.json"
    if stamp.exists() and stamp.stat().st_mtime >= lock.stat().st_mtime:
        return
    say("installing the web app's packages (npm ci in web/)")
    subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=WEB_DIR, check=True)
    stamp.touch()


def ensure_built(say):
    """Build web/dist if it is missing or older than its sources. Returns None, or one
    line saying why the app cannot be served here."""
    problem = node_problem()
    if problem:
        return problem
    index = DIST_DIR / "index.html"
    try:
        install_packages(say)
        if index.exists() and index.stat().st_mtime >= _newest_input():
            return None
        say("building the web app (vite build in web/)")
        subprocess.run(["npm", "run", "--silent", "build"], cwd=WEB_DIR, check=True, stdout=subprocess.DEVNULL)
    except subprocess.CalledProcessError as error:
        return f"building the web app failed ({' '.join(error.cmd)} exited with {error.returncode})"
    return None


# -- serving ----------------------------------------------------------------------------

def app_settings(oidc_authority, map_tiles=None, map_attribution=None):
    """What the app reads at /app-config.json. The command centre's map has no base map
    unless a tile service is named (a county's licensed one: ``.../{z}/{x}/{y}.png``)."""
    settings = {"oidc": {"authority": oidc_authority, "client_id": WEB_CLIENT, "scope": WEB_SCOPE}}
    if map_tiles:
        settings["map"] = {"tiles": {"url": map_tiles, "attribution": map_attribution or ""}}
    return settings


def _json_body(error, message):
    return json.dumps({"error": error, "message": message}).encode()


class WebHandler(BaseHTTPRequestHandler):
    server_version = "wangge-web"
    # set on the subclass made by make_handler
    dist = DIST_DIR
    locations: list = []
    upstreams: dict = {}
    settings: dict = {}
    http = None

    def log_message(self, format, *args):
        # paths carry tracking numbers and follow-up tokens: log neither
        first = urlsplit(self.path).path.split("/")[1:2]
        sys.stderr.write(f"web: {self.command} /{''.join(first)}/… {args[1] if len(args) > 1 else ''}\n")

    def do_GET(self):
        self._dispatch()

    def do_HEAD(self):
        self._dispatch()

    def do_POST(self):
        self._dispatch()

    def do_PUT(self):
        self._dispatch()

    def do_PATCH(self):
        self._dispatch()

    def do_DELETE(self):
        self._dispatch()

    def _dispatch(self):
        path = urlsplit(self.path).path
        if path.startswith(SERVICE_PATHS):
            return self._proxy(path)
        if self.command not in ("GET", "HEAD"):
            return self._answer(405, _json_body("method_not_allowed", "Only GET here."), "application/json")
        if path == "/app-config.json":
            return self._answer(200, json.dumps(self.settings).encode(), "application/json", cache="no-store")
        return self._static(path)

    def _answer(self, status, body, content_type, cache=None, headers=()):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        if cache:
            self.send_header("Cache-Control", cache)
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _static(self, path):
        dist = Path(self.dist).resolve()
        wanted = (dist / path.lstrip("/")).resolve()
        if wanted.is_file() and wanted.is_relative_to(dist):
            content_type = mimetypes.guess_type(wanted.name)[0] or "application/octet-stream"
            # hashed file names under assets/ never change; index.html must be fresh
            cache = "public, max-age=31536000, immutable" if "/assets/" in path else "no-cache"
            return self._answer(200, wanted.read_bytes(), content_type, cache=cache)
        if path.startswith("/assets/"):
            return self._answer(404, b"not found", "text/plain")
        index = dist / "index.html"
        if not index.is_file():
            return self._answer(503, _json_body("unavailable", "The web app is not built."), "application/json")
        return self._answer(200, index.read_bytes(), "text/html; charset=utf-8", cache="no-cache")

    def _proxy(self, path):
        service = service_for(path, self.locations)
        upstream = self.upstreams.get(service)
        if upstream is None:
            return self._answer(404, _json_body("not_found", "No such endpoint."), "application/json")
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            return self._answer(413, _json_body("body_too_large", "Request body too large."), "application/json")
        body = self.rfile.read(length) if length else None
        headers = {name: value for name, value in self.headers.items() if name.lower() not in NOT_FORWARDED}
        headers["X-Forwarded-For"] = self.client_address[0]
        try:
            answer = self.http.request(self.command, upstream + self.path, data=body, headers=headers,
                                       allow_redirects=False, timeout=60)
        except requests.RequestException:
            return self._answer(503, _json_body("unavailable", "The service is not available; try again shortly."),
                                "application/json")
        passed = [(name, value) for name, value in answer.headers.items()
                  if name.lower() not in NOT_FORWARDED and name.lower() != "content-type"]
        self._answer(answer.status_code, answer.content, answer.headers.get("Content-Type", "application/json"), headers=passed)


def make_server(port, upstreams, settings, dist=DIST_DIR, host="127.0.0.1", conf_text=None):
    locations, _ = gateway_locations(conf_text or GATEWAY_CONF.read_text())
    handler = type("Handler", (WebHandler,), {
        "dist": Path(dist), "locations": locations, "upstreams": dict(upstreams), "settings": settings,
        "http": requests.Session(),
    })
    return ThreadingHTTPServer((host, port), handler)


def start_web(port, upstreams, oidc_authority, log_path, detached=False):
    """The server as a process of its own, like the services; returns once it answers."""
    argv = [sys.executable, "-m", "devstack.web", "--port", str(port), "--oidc-authority", oidc_authority]
    for name, url in upstreams.items():
        argv += ["--upstream", f"{name}={url}"]
    process = ManagedProcess("web", argv, log_path, detached=detached).start()
    wait_until(lambda: http_ok(f"http://127.0.0.1:{port}/app-config.json"), 30, "the web app to answer", process=process)
    return process


WEB_PORT = 8080


def start_for_platform(issuer, log_path, say, detached=False):
    """``make run``'s web app on :8080, built first if needed; None (having said why in
    one line) where it cannot be served."""
    problem = ensure_built(say)
    if problem:
        say(f"no web app: {problem}; running the rest")
        return None
    if http_ok(f"http://127.0.0.1:{WEB_PORT}/app-config.json"):
        say(f"the web app is already served at http://127.0.0.1:{WEB_PORT}")
        return None
    try:
        return start_web(WEB_PORT, local_upstreams(), issuer, log_path, detached=detached)
    except RuntimeError as error:
        say(f"the web app did not start; running the rest: {error}")
        return None


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m devstack.web", description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--upstream", action="append", default=[], metavar="SERVICE=URL",
                        help="where a service answers (default: 127.0.0.1 and the gateway's port for it)")
    parser.add_argument("--oidc-authority", required=True, help="the OpenID Connect issuer staff sign in at")
    parser.add_argument("--dist", default=str(DIST_DIR))
    parser.add_argument("--map-tiles", default=os.environ.get("WANGGE_MAP_TILES"),
                        help="a tile service URL template for the command centre's map (env WANGGE_MAP_TILES; default: none)")
    parser.add_argument("--map-attribution", default=os.environ.get("WANGGE_MAP_ATTRIBUTION"),
                        help="the tile service's attribution (env WANGGE_MAP_ATTRIBUTION)")
    args = parser.parse_args(argv)
    upstreams = {**local_upstreams(), **dict(item.split("=", 1) for item in args.upstream)}
    settings = app_settings(args.oidc_authority, args.map_tiles, args.map_attribution)
    server = make_server(args.port, upstreams, settings, dist=args.dist, host=args.host)
    print(f"web: serving {args.dist} on http://{args.host}:{args.port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
