"""intake, routing and notify as separate processes under a steady inbound load, and
a tally of what became of every request: for the tests that take the broker away
under them (a node's stop and start, a cluster losing a node)."""
import os
import re
import signal
import threading
import time
import uuid
from collections import Counter
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from amqp.exceptions import ConnectionError as AMQPConnectionError
from kombu import Connection
from kombu.exceptions import OperationalError
from pymongo import MongoClient

from devstack.demo_county import build_county
from integration.publish_example import publish_request
from tests.support.peers import http_peer
from tests.support.services import running_service
from wangge import topology

SERVICES = ("intake", "routing", "notify")
NOTIFIED_KINDS = {"case_assigned.worker", "case_assigned.resident"}
SOURCE = "hotline12345"
TRACKING_NO = re.compile(r"YT-\d{8}-[0-9A-Z]{4}-[0-9A-Z]{4}")


class InboundLoad:
    """Requests as an integrator's system sends them: each confirmed by the broker,
    and a publish that meets a connection error retried (kombu's retry policy,
    without limit) until the broker takes it; a connection the broker closes for good
    (a node stopping answers 541 INTERNAL_ERROR) is opened again, on another node, and
    the same request sent again. A retried publish may arrive twice: it keeps its
    message_id, and intake files it once."""

    def __init__(self, amqp_uri, grids):
        self.amqp_uri = amqp_uri
        self.grids = grids
        self.confirmed = []  # (message_id, monotonic time the broker confirmed it)
        self._unconfirmed = None  # (message_id, body) being sent, until the broker confirms it
        self._failure = None
        self._stopping = threading.Event()
        self._thread = None

    def request(self):
        number = len(self.confirmed) + 1
        grid = self.grids[number % len(self.grids)]
        marker = uuid.uuid4().hex[:12]
        body = {
            "source": SOURCE,
            "submitted_at": datetime.now(timezone.utc).isoformat(),
            # one case per request: the duplicate check is off (DUPLICATE_THRESHOLD)
            "text": f"{grid['name']}第{number}号诉求：楼道照明损坏 {marker}",
            "grid_id": grid["id"],
            "reporter": {"name": "林先生", "phone": f"139{number:08d}"},
            "external_ref": f"HL-{marker}",
        }
        return marker, body

    def publish(self, connection):
        message_id, body = self._unconfirmed = self._unconfirmed or self.request()
        publish_request(connection, body, message_id=message_id, source=body["source"])
        self.confirmed.append((message_id, time.monotonic()))
        self._unconfirmed = None

    def burst(self, count):
        with self._connection() as connection:
            for _ in range(count):
                self.publish(connection)

    def start(self, rate):
        def steady():
            while not self._stopping.is_set():
                try:
                    with self._connection() as connection:
                        while not self._stopping.is_set():
                            started = time.monotonic()
                            self.publish(connection)
                            time.sleep(max(0.0, 1 / rate - (time.monotonic() - started)))
                except (AMQPConnectionError, OperationalError, OSError):
                    time.sleep(0.5)  # the broker closed the connection, or is away: a new one, the same request
                except Exception as exc:  # anything else ends the load, and the test hears of it in stop()
                    self._failure = exc
                    return

        self._thread = threading.Thread(target=steady, daemon=True)
        self._thread.start()

    def stop(self):
        self._stopping.set()
        self._thread.join(timeout=30)
        assert not self._thread.is_alive(), "the publisher did not get its last request confirmed"
        if self._failure is not None:
            raise AssertionError(f"the publisher stopped publishing: {self._failure!r}") from self._failure

    def _connection(self):
        return Connection(self.amqp_uri, transport_options={"confirm_publish": True})


def quiet_hours_elsewhere():
    """Quiet hours that do not cover the test run (residents' messages would be held)."""
    local = datetime.now(ZoneInfo("Asia/Shanghai"))
    return {"QUIET_HOURS_START": (local + timedelta(hours=2)).strftime("%H:%M"),
            "QUIET_HOURS_END": (local + timedelta(hours=3)).strftime("%H:%M")}


class Platform:
    """intake, routing and notify as separate processes, with an HTTP peer standing
    in for the WeCom robot (workers hear there) and the SMS gateway (residents)."""

    def __init__(self, stack, broker, mongo_uri, log_dir):
        run = uuid.uuid4().hex[:8]
        self.peer = stack.enter_context(http_peer(log_dir))
        env = {
            "DUPLICATE_THRESHOLD": "2",  # above any similarity: every request opens its own case
            "WECOM_WEBHOOK_URL": f"{self.peer.url}/wecom", "WECOM_DEFAULT_KEY": "robot-key",
            "SMS_GATEWAY_URL": f"{self.peer.url}/sms", "SMS_GATEWAY_TOKEN": "sms-token",
            "DELIVERY_INTERVAL_SECONDS": "0.2",
            **quiet_hours_elsewhere(),
        }
        self.databases = {name: f"{name}_{run}" for name in SERVICES}
        self.services = {
            name: stack.enter_context(running_service(
                name, amqp_uri=broker.amqp_uri, mongo_uri=mongo_uri, log_dir=log_dir,
                database=self.databases[name], extra_env=env,
            ))
            for name in SERVICES
        }
        self.pids = {name: service.process.pid for name, service in self.services.items()}
        self.client = stack.enter_context(MongoClient(mongo_uri))

    def load_county(self):
        """The demo county's registry loaded into routing; its grids, for the load to file at."""
        county = build_county()
        routing = self.services["routing"]
        response = routing.as_admin.put(routing.url("/api/v1/registry"), json=county, timeout=180)
        assert response.status_code == 200, response.text
        return [grid for town in county["towns"] for community in town["communities"] for grid in community["grids"]]

    def deliveries(self):
        """How often each (channel, tracking number) reached the peer and was taken."""
        return Counter(
            (line["path"], TRACKING_NO.search(line["body"]).group(0))
            for line in self.peer.received() if line["answered"] == 200 and TRACKING_NO.search(line["body"])
        )

    def db(self, name):
        return self.client[self.databases[name]]

    @contextmanager
    def paused(self):
        """Stopped (SIGSTOP) and then continued, as a busy or throttled process is
        for a moment: whatever happened meanwhile, it meets all at once."""
        for service in self.services.values():
            os.kill(service.process.pid, signal.SIGSTOP)
        try:
            yield
        finally:
            for service in self.services.values():
                os.kill(service.process.pid, signal.SIGCONT)

    def exited(self):
        return {name: service.process.process.returncode
                for name, service in self.services.items() if service.process.exited()}

    def log_tails(self):
        return "\n\n".join(f"--- {name}\n{service.process.log_tail(25)}" for name, service in self.services.items())

    def green_thread_stacks(self):
        """Every running service's green threads, as it logs them on SIGUSR1: what a
        service that stopped taking its queue is waiting on."""
        running = {name: service for name, service in self.services.items() if not service.process.exited()}
        for service in running.values():
            os.kill(service.process.process.pid, signal.SIGUSR1)
        time.sleep(2)
        return "\n\n".join(f"--- {name}\n" + "\n".join(line for line in service.process.log_tail(2000).splitlines()
                                                       if '"green thread stack"' in line)
                           for name, service in running.items())


def tally(platform, broker, message_ids):
    """What became of each published request, and what is left on the broker."""
    stored = list(platform.db("intake")["requests"].find({}, {"idempotency_key": 1}))
    requests_by_key = Counter(doc["idempotency_key"] for doc in stored)
    request_ids = {doc["_id"] for doc in stored}
    cases_by_request = Counter(doc["request_id"] for doc in platform.db("routing")["cases"].find({}, {"request_id": 1}))
    notifications = list(platform.db("notify")["notifications"].find({}, {"tracking_no": 1, "kind": 1, "status": 1}))
    kinds_by_tracking_no = {}
    for notification in notifications:
        kinds_by_tracking_no.setdefault(notification["tracking_no"], []).append(notification["kind"])
    deliveries = platform.deliveries()
    # intake keys an inbound message by its source and message id
    wanted = {f"inbound:{SOURCE}:{message_id}" for message_id in message_ids}
    return {
        "published": len(wanted),
        "stored": len(wanted & set(requests_by_key)),
        "stored_twice": sum(1 for key in wanted if requests_by_key[key] > 1),
        "stored_unasked": len(set(requests_by_key) - wanted),
        "cased": sum(1 for request_id in request_ids if cases_by_request[request_id]),
        "cased_twice": sum(1 for count in cases_by_request.values() if count > 1),
        "notified": sum(1 for kinds in kinds_by_tracking_no.values() if set(kinds) == NOTIFIED_KINDS),
        "notified_twice": sum(1 for kinds in kinds_by_tracking_no.values() if len(kinds) != len(set(kinds))),
        "sent": sum(1 for notification in notifications if notification["status"] == "sent"),
        "notifications": len(notifications),
        "delivered": len(deliveries),
        "delivered_twice": sum(1 for count in deliveries.values() if count > 1),
        "left_on_broker": queue_depths(broker.amqp_uri) if broker.accepts_connections() else "broker down",
    }


def platform_queues():
    """The queues of the three services, with their retry and dead-letter queues."""
    names = []
    for service in SERVICES:
        for queue in topology.consumed_by(service):
            names += [queue.name, topology.retry_queue_name(queue.name)]
        names += topology.dead_letter_queues_of(service)
    return sorted(set(names))


def queue_depths(amqp_uri):
    """``{queue: (messages ready, consumers)}`` for the platform's queues."""
    depths = {}
    with Connection(amqp_uri) as connection:
        for name in platform_queues():
            _, messages, consumers = connection.default_channel.queue_declare(name, passive=True)
            depths[name] = (messages, consumers)
    return depths


def left_queued(figures):
    depths = figures["left_on_broker"]
    return depths if isinstance(depths, str) else {name: messages for name, (messages, _) in depths.items() if messages}


def everything_through(platform, broker, message_ids):
    figures = tally(platform, broker, message_ids)
    came_through = figures["published"] == figures["stored"] == figures["cased"] == figures["notified"]
    # a notice the peer has taken is marked sent a moment later: wait for that too
    delivered = figures["delivered"] == figures["sent"] == 2 * figures["published"]
    done = came_through and delivered and not left_queued(figures)
    return figures if done else None
