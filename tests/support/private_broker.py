"""A RabbitMQ node of the test's own, to stop and start at will.

The machine's shared broker (port 5672) is never touched: this node has its own
name, ports, data and log directories, configuration (no plugins, so nothing
competes for the management or Prometheus ports) and Erlang cookie, so not even
a mistyped node name can reach the shared node with ``rabbitmqctl``. Its data
survives ``restart()``, as a production node's does: durable queues and
persistent messages are still there when it comes back.

As root, the node runs as the ``rabbitmq`` user (as Debian's wrapper scripts
would run it, but with this node's environment rather than the machine's), and
its directories belong to that user.

    with private_broker() as broker:
        ... broker.amqp_uri ...
        broker.stop(); ...; broker.start()
"""
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

from kombu import Connection

from tests.support.ports import free_port

RABBITMQ_BIN = Path("/usr/lib/rabbitmq/bin")
RABBITMQ_USER = "rabbitmq"
START_TIMEOUT = 60
CLUSTER_START_TIMEOUT = 240
STOP_TIMEOUT = 60


class BrokerUnavailable(RuntimeError):
    """This machine cannot run a private RabbitMQ node."""


def without_private_broker(reason):
    """Skip where this machine cannot run a node of our own, but fail in CI, which
    always can: a broker test must never pass there by not running."""
    import pytest

    if os.environ.get("CI"):
        pytest.fail(f"a private RabbitMQ node cannot run: {reason}", pytrace=False)
    pytest.skip(str(reason))


def run_as():
    """The argv prefix that runs a RabbitMQ script as the user it must run as."""
    if os.geteuid() != 0:
        return []
    try:
        pwd.getpwnam(RABBITMQ_USER)
    except KeyError as exc:
        raise BrokerUnavailable(f"no {RABBITMQ_USER} user to run RabbitMQ as") from exc
    if not shutil.which("runuser"):
        raise BrokerUnavailable("runuser is needed to run RabbitMQ as its own user")
    return ["runuser", "-u", RABBITMQ_USER, "--"]


class PrivateBroker:
    def __init__(self, directory, cookie=None, start_timeout=START_TIMEOUT):
        if not (RABBITMQ_BIN / "rabbitmq-server").exists():
            raise BrokerUnavailable(f"RabbitMQ is not installed ({RABBITMQ_BIN})")
        run_as()
        self.directory = Path(directory)
        self.node = f"wangge-test-{uuid.uuid4().hex[:8]}@localhost"
        self.port = free_port()
        self.dist_port = free_port()
        self.amqp_uri = f"amqp://guest:guest@127.0.0.1:{self.port}/"
        self.process = None
        self.start_timeout = start_timeout
        self._prepare(cookie or secrets.token_hex(20))

    def _prepare(self, cookie_value):
        home = self.directory / "home"
        for path in (home, self.directory / "mnesia", self.directory / "log"):
            path.mkdir(parents=True, exist_ok=True)
        cookie = home / ".erlang.cookie"
        cookie.write_text(cookie_value)
        cookie.chmod(0o400)
        (self.directory / "rabbitmq.conf").write_text(f"listeners.tcp.local = 127.0.0.1:{self.port}\n")
        (self.directory / "enabled_plugins").write_text("[].\n")
        # the shared node's rabbitmq-env.conf names that node: read ours instead
        (self.directory / "rabbitmq-env.conf").write_text(
            'ERL_EPMD_ADDRESS=127.0.0.1\nexport ERL_FLAGS="-kernel inet_dist_use_interface {127,0,0,1}"\n'
        )
        if os.geteuid() == 0:
            user = pwd.getpwnam(RABBITMQ_USER)
            for path in [self.directory, *self.directory.rglob("*")]:
                os.chown(path, user.pw_uid, user.pw_gid)

    def _env(self):
        return {
            "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
            "LANG": "C.UTF-8",
            "HOME": str(self.directory / "home"),  # where Erlang finds the node's own cookie
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": str(self.directory / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.directory / "log"),
            "RABBITMQ_CONFIG_FILE": str(self.directory / "rabbitmq.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.directory / "enabled_plugins"),
            "RABBITMQ_CONF_ENV_FILE": str(self.directory / "rabbitmq-env.conf"),
        }

    def _command(self, script, *args):
        # env after runuser: runuser resets HOME to the rabbitmq user's (the shared cookie)
        env = [f"{key}={value}" for key, value in self._env().items()]
        return [*run_as(), "env", "-i", *env, str(RABBITMQ_BIN / script), *args]

    @property
    def running(self):
        return self.process is not None and self.process.poll() is None

    def accepts_connections(self):
        try:
            with Connection(self.amqp_uri, connect_timeout=1) as connection:
                connection.connect()
            return True
        except Exception:
            return False

    def start(self):
        if self.running:
            return self
        log = open(self.directory / "server.out", "ab")
        with log:
            self.process = subprocess.Popen(
                self._command("rabbitmq-server"), stdout=log, stderr=subprocess.STDOUT,
                cwd=self.directory, start_new_session=True,  # a test's Ctrl-C is not the node's
            )
        deadline = time.monotonic() + self.start_timeout
        while not self.accepts_connections():
            if not self.running:
                raise RuntimeError(f"RabbitMQ node {self.node} exited while starting:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                self._kill()
                raise RuntimeError(
                    f"RabbitMQ node {self.node} did not accept connections within {self.start_timeout}s:\n{self.log_tail()}"
                )
            time.sleep(0.2)
        return self

    def stop(self):
        """Stop the whole node (not just the RabbitMQ application), as a host
        shutdown or a package upgrade does; its clients see their connections closed."""
        if not self.running:
            return
        try:
            subprocess.run(self._command("rabbitmqctl", "-n", self.node, "stop"), cwd=self.directory,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=STOP_TIMEOUT)
            self.process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self._kill()

    def restart(self, away_seconds=0):
        self.stop()
        time.sleep(away_seconds)
        return self.start()

    def ctl(self, *args):
        """``rabbitmqctl`` against this node; its output."""
        done = subprocess.run(self._command("rabbitmqctl", "-n", self.node, *args), cwd=self.directory,
                              capture_output=True, text=True, timeout=STOP_TIMEOUT)
        if done.returncode != 0:
            raise RuntimeError(f"rabbitmqctl {' '.join(args)} on {self.node}: {done.stderr.strip() or done.stdout.strip()}")
        return done.stdout

    def join(self, seed):
        """Join ``seed``'s cluster (this node's own data is reset, as joining requires)."""
        self.ctl("stop_app")
        self.ctl("join_cluster", seed.node)
        self.ctl("start_app")

    def _kill(self):
        if self.running:
            os.killpg(self.process.pid, signal.SIGKILL)  # the session started for this node only
            self.process.wait()

    def log_tail(self, lines=30):
        path = self.directory / "server.out"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""


@contextmanager
def private_broker():
    """A started node in a directory of its own under /tmp (pytest's tmp_path is
    private to root, and the node runs as the rabbitmq user), removed afterwards."""
    directory = tempfile.mkdtemp(prefix="wangge-broker-")
    try:
        broker = PrivateBroker(directory)
        try:
            yield broker.start()
        finally:
            broker.stop()
            broker._kill()
    finally:
        shutil.rmtree(directory, ignore_errors=True)


class PrivateCluster:
    """Nodes of the test's own joined in one RabbitMQ cluster (one Erlang cookie,
    each with its own name, ports and data). Clients are given every node's URI,
    separated by ``;``, as the services are in production: kombu connects to the
    first that answers and fails over to the next."""

    def __init__(self, nodes):
        self.nodes = nodes
        self.amqp_uri = ";".join(node.amqp_uri for node in nodes)

    def accepts_connections(self):
        return any(node.accepts_connections() for node in self.nodes)

    def node_named(self, name):
        return next(node for node in self.nodes if node.node == name)

    def any_running(self):
        return next(node for node in self.nodes if node.running)

    def _queue_info(self, queue_name, column, vhost):
        """A column of ``list_queues`` for one queue, or None while the cluster cannot say
        (an election under way, a node still joining)."""
        try:
            rows = self.any_running().ctl("list_queues", "-q", "--no-table-headers", "-p", vhost, "name", column)
        except (RuntimeError, subprocess.TimeoutExpired, StopIteration):
            return None
        return dict(line.split("\t")[:2] for line in rows.splitlines() if "\t" in line).get(queue_name) or None

    def leader_of(self, queue_name, vhost="/"):
        """The name of the node that leads a quorum queue now (None while there is none)."""
        return self._queue_info(queue_name, "leader", vhost)

    def members_of(self, queue_name, vhost="/"):
        """The queue's members online, as rabbitmqctl lists them."""
        return self._queue_info(queue_name, "online", vhost) or ""

    def running_nodes(self):
        try:
            return int(self.any_running().ctl("eval", "length(rabbit_nodes:all_running()).").strip())
        except (RuntimeError, ValueError, subprocess.TimeoutExpired, StopIteration):
            return None


@contextmanager
def private_cluster(size=3):
    """``size`` started nodes, clustered, in directories of their own; removed afterwards."""
    cookie = secrets.token_hex(20)
    directories = [tempfile.mkdtemp(prefix="wangge-cluster-") for _ in range(size)]
    nodes = []
    try:
        # booting together on a busy machine, and later rejoining, a node takes longer than alone
        nodes = [PrivateBroker(directory, cookie=cookie, start_timeout=CLUSTER_START_TIMEOUT) for directory in directories]
        with ThreadPoolExecutor(size) as starting:  # a node takes seconds to boot: boot them together
            list(starting.map(PrivateBroker.start, nodes))
        for node in nodes[1:]:
            node.join(nodes[0])
        yield PrivateCluster(nodes)
    finally:
        for node in nodes:
            node.stop()
            node._kill()
        for directory in directories:
            shutil.rmtree(directory, ignore_errors=True)
