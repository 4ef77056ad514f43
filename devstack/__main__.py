"""``python -m devstack run|up|down|status``: the whole platform on this machine.

run     start the store, the identity provider, every service and the demo data; print the URLs; Ctrl-C stops all
up      the same, detached; returns once every service answers GET /health
down    stop what ``up`` started
status  what is running
test-broker  RabbitMQ up with its management API, as the tests need it
wecom "…"    a resident's message to the demo grid group's WeCom robot, sent as WeCom sends it
"""
import argparse
import os
import shutil
import signal
import subprocess
import sys
import time

from devstack import demo, identity, web, wecom
from devstack.processes import (
    ROOT, SERVICE_PORTS, available_services, http_ok, service_env, start_service, start_store,
    store_answers, wait_until,
)
from wangge import quorum_migration
from wangge.preflight import broker_problem

VAR = ROOT / "var"
RUN_DIR = VAR / "run"
LOG_DIR = VAR / "log"
STORE_DIR = VAR / "store"
DEFAULT_AMQP_URI = "amqp://guest:guest@127.0.0.1:5672/"
DEFAULT_STORE_PORT = 27017
# SecantusDB builds 2dsphere entries slowly (routing's config.yml, REGISTRY.AREA_INDEX).
LOCAL_STORE_TUNING = {"ROUTING_AREA_INDEX": "false"}
OUTBOX_PATH = VAR / "notify-outbox.jsonl"
# Every notice goes to one file instead of real WeCom robots, SMS gateways and mail servers.
LOCAL_NOTIFY = {
    **{f"NOTIFY_{role}_CHANNEL": "outbox" for role in ("WORKER", "GRID_HEAD", "LEAD", "DEPARTMENT", "RESIDENT", "GROUP", "MEMBER")},
    "NOTIFY_OUTBOX_PATH": str(OUTBOX_PATH),
}


def say(message):
    print(f"wangge: {message}", flush=True)


def ensure_broker(amqp_uri):
    """RabbitMQ reachable, started here if it is installed but down; else one line and exit."""
    if broker_problem(amqp_uri, timeout=2) is None:
        return
    if shutil.which("rabbitmq-server"):
        say("RabbitMQ is not answering; starting it (rabbitmq-server -detached)")
        subprocess.run(["rabbitmq-server", "-detached"], check=False, capture_output=True)
        try:
            wait_until(lambda: broker_problem(amqp_uri, timeout=2) is None, 60, "RabbitMQ to answer", interval=1)
            return
        except RuntimeError:
            pass
    problem = broker_problem(amqp_uri, timeout=2)
    sys.exit(f"wangge: {problem}")


def upgrade_queues(amqp_uri):
    """Queues an earlier version of the platform left on this broker are classic ones:
    they become the quorum queues the services declare now, messages kept."""
    report = quorum_migration.migrate(amqp_uri)
    for name, moved in report.migrated.items():
        say(f"queue {name} is a quorum queue now ({moved} message(s) kept)")


def pid_file(name):
    return RUN_DIR / f"{name}.pid"


def running_pid(name):
    path = pid_file(name)
    if not path.exists():
        return None
    pid = int(path.read_text())
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        path.unlink()
        return None
    return pid


def ensure_store(detached):
    """The store's URI: MONGO_URI if set, else SecantusDB on 127.0.0.1:27017 (reused if
    already up), with its data under var/store so it survives restarts."""
    if os.environ.get("MONGO_URI"):
        return os.environ["MONGO_URI"], None
    uri = f"mongodb://127.0.0.1:{DEFAULT_STORE_PORT}/?retryWrites=false"
    if store_answers(uri):
        return uri, None
    say(f"starting the store (SecantusDB) on 127.0.0.1:{DEFAULT_STORE_PORT}, data in {STORE_DIR.relative_to(ROOT)}")
    store = start_store(DEFAULT_STORE_PORT, STORE_DIR, LOG_DIR / "store.log", detached=detached)
    wait_until(lambda: store_answers(uri), 60, "the store to answer", process=store)
    return uri, store


def ensure_identity(detached):
    """The local OpenID Connect provider and its settings, or one line saying why
    not: the platform runs without it."""
    problem = identity.node_problem()
    if problem:
        say(f"no identity provider: {problem}; running the rest")
        return None, None
    try:
        process, local = identity.start_local_provider(LOG_DIR / "identity.log", detached=detached)
    except RuntimeError as error:
        say(f"the identity provider did not start; running the rest: {error}")
        return None, None
    if process is None:
        say(f"the identity provider is already running at {local['issuer']}")
    return process, local


def start_platform(detached):
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    amqp_uri = os.environ.get("AMQP_URI", DEFAULT_AMQP_URI)
    ensure_broker(amqp_uri)
    if not any(running_pid(name) for name in available_services()):
        upgrade_queues(amqp_uri)
    mongo_uri, store = ensure_store(detached)
    local_store = "MONGO_URI" not in os.environ
    started = [store] if store else []
    provider, identity_settings = ensure_identity(detached)
    started += [provider] if provider else []
    trust = identity.service_settings(identity_settings) if identity_settings else {}
    for name in available_services():
        if running_pid(name):
            say(f"{name} is already running")
            continue
        extra = {**LOCAL_NOTIFY, **(LOCAL_STORE_TUNING if local_store else {}), **trust,
                 # the grid groups' WeCom robot: this machine's demo one unless the environment names one
                 **(wecom.robot_settings() if name == "intake" else {})}
        env = service_env(name, amqp_uri=amqp_uri, mongo_uri=mongo_uri, port=SERVICE_PORTS[name], host="0.0.0.0", extra=extra)
        started.append(start_service(name, env, LOG_DIR / f"{name}.log", detached=detached))
    for process in started:
        pid_file(process.name).write_text(str(process.pid))
    try:
        for name in available_services():
            process = next((p for p in started if p.name == name), None)
            wait_until(lambda: http_ok(f"http://127.0.0.1:{SERVICE_PORTS[name]}/health"), 60, f"{name} to answer /health", process=process)
    except RuntimeError as error:
        stop_processes(started)
        sys.exit(f"wangge: {error}")
    if identity_settings:
        demo.load(SERVICE_PORTS, available_services(), identity.admin_session(identity_settings))
    else:
        say("no demo data: loading it needs the identity provider (every staff endpoint wants a token)")
    web_app = web.start_for_platform(identity.settings()["issuer"], LOG_DIR / "web.log", say, detached=detached)
    if web_app:
        started.append(web_app)
        pid_file(web_app.name).write_text(str(web_app.pid))
    print_urls(identity_settings, web_app is not None)
    return started


def print_urls(identity_settings=None, web_app=False):
    print()
    if web_app:
        print(f"  web app  http://127.0.0.1:{web.WEB_PORT}/   residents: /report/<grid_id>, /track; grid workers: /staff/cases;"
              " command centre: /staff/centre")
    for name in available_services():
        base = f"http://127.0.0.1:{SERVICE_PORTS[name]}"
        print(f"  {name:<8} {base}   health {base}/health   metrics {base}/metrics")
    if identity_settings:
        print(f"  identity {identity_settings['issuer']}   OpenID Connect, {identity_settings['issuer']}/.well-known/openid-configuration")
        print(f"           demo logins, password {identity_settings['password']}: w-zc-nanmen-02-1 (a worker of 南门社区's grid 02),")
        print("           w-zc-nanmen-02-h (its head), county-center (the command centre), lead-zhangcheng (樟城镇's lead),")
        print("           county-admin, dept-power, editor; every grid worker and head by their registry id")
        print("           a token: .venv/bin/wangge-admin token --user county-admin   (a service's: --client wangge-services)")
    print(f"  logs     {LOG_DIR.relative_to(ROOT)}/")
    if "notify" in available_services():
        print(f"  notices  {OUTBOX_PATH.relative_to(ROOT)}   (every message notify sends, one JSON line each)")
    print()
    print("  try:  curl -s -X POST http://127.0.0.1:8001/api/v1/requests -H 'Content-Type: application/json' \\")
    print("          -d '{\"channel\": \"web\", \"text\": \"南湖花园二区的路灯坏了\"}'")
    print("        curl -s http://127.0.0.1:8001/api/v1/requests/<tracking_no>")
    if "intake" in available_services():
        print("        .venv/bin/python -m devstack wecom '南湖花园二区的路灯坏了'   (a resident in 南门社区第二网格's WeChat group, through the robot)")
    print(flush=True)


def stop_processes(processes):
    for process in reversed(processes):
        process.stop()
        pid_file(process.name).unlink(missing_ok=True)


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def ensure_test_broker():
    """RabbitMQ up with its management API (the tests make throwaway vhosts through
    it) and its Prometheus endpoint (the observability test scrapes queue depths)."""
    ensure_broker(os.environ.get("AMQP_URI", DEFAULT_AMQP_URI))
    management = "http://127.0.0.1:15672/api/overview"
    prometheus = "http://127.0.0.1:15692/metrics"
    if http_ok(management, auth=("guest", "guest")) and http_ok(prometheus):
        return 0
    if not shutil.which("rabbitmq-plugins"):
        sys.exit(f"wangge: RabbitMQ's management API ({management}) or Prometheus endpoint ({prometheus}) does not answer: "
                 "enable the rabbitmq_management and rabbitmq_prometheus plugins")
    say("enabling RabbitMQ's management and prometheus plugins")
    subprocess.run(["rabbitmq-plugins", "enable", "rabbitmq_management", "rabbitmq_prometheus"], check=True, capture_output=True)
    wait_until(lambda: http_ok(management, auth=("guest", "guest")) and http_ok(prometheus), 60, "the plugins to answer", interval=1)
    return 0


def run():
    started = start_platform(detached=False)
    say("running; Ctrl-C stops everything")
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        while True:
            dead = [p for p in started if p.exited()]
            if dead:
                for process in dead:
                    say(f"{process.name} stopped unexpectedly:\n{process.log_tail(15)}")
                stop_processes(started)
                return 1
            time.sleep(1)
    except KeyboardInterrupt:
        say("stopping")
        stop_processes(started)
    return 0


def down():
    for name in ["web"] + list(reversed(available_services())) + ["identity", "store"]:
        pid = running_pid(name)
        if pid is None:
            continue
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        while running_pid(name) and time.monotonic() < deadline:
            time.sleep(0.2)
        if running_pid(name):
            os.kill(pid, signal.SIGKILL)
        pid_file(name).unlink(missing_ok=True)
        say(f"stopped {name}")
    return 0


def status():
    for name in ["store", "identity"] + available_services() + ["web"]:
        pid = running_pid(name)
        print(f"  {name:<8} {'running (pid %d)' % pid if pid else 'stopped'}")
    return 0


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["wecom"]:
        return wecom.main(argv[1:])
    parser = argparse.ArgumentParser(prog="python -m devstack", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["run", "up", "down", "status", "test-broker"])
    command = parser.parse_args(argv).command
    if command == "run":
        return run()
    if command == "up":
        start_platform(detached=True)
        return 0
    if command == "test-broker":
        return ensure_test_broker()
    return down() if command == "down" else status()


if __name__ == "__main__":
    sys.exit(main())
