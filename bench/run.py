"""``make bench``: how fast and how far one node goes, against the raw broker and store.

Every figure is a median of several runs and sits next to a baseline measured in
the same run on the same RabbitMQ and store; results go to bench/results.json.
"""
import json
import os
import platform as host
import statistics
import sys
from collections import Counter
import tempfile
import threading
import time
import uuid
from contextlib import ExitStack
from datetime import datetime, timedelta, timezone
from pathlib import Path

from kombu import Connection, Queue
from pymongo import MongoClient

from bench.hop import hop_queue
from bench.cpu import CpuMeter, broker_pid
from bench.store import own_store, pinned_cpus, store_cpu
from bson import json_util
from devstack.demo_county import build_county
from devstack.processes import ManagedProcess
from integration.publish_example import publish_request
from services.routing.registry import flatten, validate_registry
from services.routing.storage import RoutingStore
from tests.support.broker import throwaway_vhost
from tests.support.identity import running_identity
from tests.support.services import running_service, set_active_identity
from wangge.config import load_service_config

ROOT = Path(__file__).resolve().parent.parent
RUNS = int(os.environ.get("BENCH_RUNS", 3))
# Pairs of runs for the ratio to baseline (c): its median moves less from bench to bench with
# more. An even number, so each side goes first as often: over a bench the machine drifts (one
# bench's runs of both slowed by a quarter), so the second run of a pair tends to be the slower.
PAIRS = int(os.environ.get("BENCH_PAIRS", 6))
BURST = int(os.environ.get("BENCH_REQUESTS", 150))
# Latency is measured at this share of the capacity measured just before: above
# capacity it would only measure the queue growing.
OFFERED_SHARE = float(os.environ.get("BENCH_OFFERED_SHARE", 0.8))
LATENCY_SECONDS = 20
SETTLE_SECONDS = 2
# Reading the store's write counters once a run's notices are all out: how long they must stay still
WRITES_QUIET_SECONDS = 0.5
PIPELINE_SERVICES = ("intake", "routing", "notify")  # a request's hops, in turn
BASELINE_DATABASES = []  # this bench's baseline database not dropped yet (a store may be shared)
# outbox everywhere: the bench measures the platform, not an SMS gateway
QUIET_LOCAL = {f"NOTIFY_{role}_CHANNEL": "outbox" for role in ("WORKER", "GRID_HEAD", "LEAD", "DEPARTMENT", "RESIDENT", "GROUP", "MEMBER")}


def log(message):
    print(f"bench: {message}", file=sys.stderr, flush=True)


def machine_facts():
    memory = next(line for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal"))
    return {"cpus": os.cpu_count(), "memory": memory.split(":")[1].strip(), "python": host.python_version(),
            "platform": host.platform(), "store": "SecantusDB (sync-on-commit, no periodic checkpoint)", "broker": "RabbitMQ on 127.0.0.1",
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds")}


def rss_mb(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS"):
            return round(int(line.split()[1]) / 1024, 1)
    return None


def wait_for(check, timeout, interval=0.05):
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"bench step did not finish within {timeout}s")
        time.sleep(interval)


def writes(client):
    counters = client.admin.command("serverStatus")["opcounters"]
    return counters["insert"] + counters["update"] + counters["delete"]


# -- baselines ---------------------------------------------------------------------

def baseline_direct(amqp_uri, mongo_uri, messages=2000):
    """(a) kombu publisher → one kombu consumer that stores each message: messages/s."""
    queue, database = f"bench.direct.{uuid.uuid4().hex[:6]}", f"bench_{uuid.uuid4().hex[:6]}"
    return baseline_run(amqp_uri, mongo_uri, database, [queue], ["1"], [1], messages)


def pipeline_concurrency():
    """How many messages each of the pipeline's hops handles at once: its service's
    ``max_workers`` (nameko's workers, and the prefetch of its consumers)."""
    return [int(load_service_config(service)["max_workers"]) for service in PIPELINE_SERVICES]


def baseline_hops(amqp_uri, mongo_uri, writes_per_hop, messages=BURST):
    """(b) the pipeline's three hops as bare kombu consumers doing as many inserts as the
    pipeline's writes, as many messages at once as the service each stands in for."""
    tag = uuid.uuid4().hex[:6]
    queues = [f"bench.hop{n}.{tag}" for n in range(len(writes_per_hop))]
    return baseline_run(amqp_uri, mongo_uri, f"bench_{tag}", queues, [str(w) for w in writes_per_hop], pipeline_concurrency(), messages)


def baseline_same_operations(amqp_uri, mongo_uri, plans, scratch, messages=BURST, store=None, cpu=None):
    """(c) the pipeline's three hops as bare kombu + pymongo consumers doing exactly the
    store writes the pipeline made in its throughput runs: the same collections and
    indexes (as many documents in each as the plans say, at least ``messages``),
    documents of the same size, as many insert, update and delete commands per
    request touching as many documents (counted from the store), each service's writes
    at its hop, as many messages at once as that service."""
    tag = uuid.uuid4().hex[:6]
    queues = [f"bench.same{n}.{tag}" for n in range(len(plans))]
    files = []
    for n, plan in enumerate(plans):
        path = scratch / f"same-ops-{tag}-{n}.json"
        path.write_text(json.dumps({**plan, "seeded": messages}), encoding="utf-8")
        files.append(str(path))
    return baseline_run(amqp_uri, mongo_uri, f"bench_{tag}", queues, files, pipeline_concurrency(), messages, store=store, cpu=cpu)


def run_hops(amqp_uri, mongo_uri, database, queues, work_per_hop, consumers_per_hop, messages, store=None, cpu=None):
    """Bare kombu hops, one a queue, each doing its work and passing the message on, as
    many messages at once as its consumers: messages/s from the first publish until the
    last hop has finished every one.
    With ``store`` (a :class:`bench.store.BenchStore`), what it spent over that time too;
    with ``cpu`` (a :class:`bench.cpu.CpuMeter`), the CPU of the hops and its fixed roles."""
    with Connection(amqp_uri) as connection:
        for queue in queues:
            hop_queue(queue)(connection.default_channel).declare()
    progress = Path(tempfile.gettempdir()) / f"bench-{database}.progress"
    progress.write_bytes(b"")
    processes = []
    for index, (queue, work, consumers) in enumerate(zip(queues, work_per_hop, consumers_per_hop)):
        out = queues[index + 1] if index + 1 < len(queues) else "-"
        # only the last hop counts: a message is done when it has been through every hop
        argv = [sys.executable, "-m", "bench.hop", amqp_uri, mongo_uri, database, queue, out, work, str(consumers)] + ([str(progress)] if out == "-" else [])
        processes.append(ManagedProcess(f"hop{index}", argv, Path(tempfile.gettempdir()) / f"bench-{database}-hop{index}.log").start())
    try:
        # consumers connected, their collections prepared
        wait_for(lambda: hops_alive(processes) and all("ready" in Path(p.log_path).read_text() for p in processes), 300, interval=0.2)
        if store:
            store.start_timing()
        if cpu:
            cpu.start({"hops": [process.pid for process in processes]})
        started = time.monotonic()
        with Connection(amqp_uri, transport_options={"confirm_publish": True}) as connection:
            producer = connection.Producer()
            for n in range(messages):
                producer.publish({"n": n, "text": "南湖花园二区的路灯坏了"}, routing_key=queues[0], serializer="json", delivery_mode=2)
        wait_for(lambda: hops_alive(processes) and progress.stat().st_size >= messages, 600, interval=0.1)
        rate = messages / (time.monotonic() - started)
        if store:
            store.stop_timing(messages)
        if cpu:
            cpu.stop(messages)
        log(f"  {rate:.1f} messages/s")
        return rate
    finally:
        for process in processes:
            process.stop()
        progress.unlink(missing_ok=True)


def baseline_run(amqp_uri, mongo_uri, database, queues, work_per_hop, consumers_per_hop, messages, store=None, cpu=None):
    """:func:`run_hops` on a database of the baseline's own, after dropping this bench's
    earlier baselines': the store need not keep their collections and indexes, and the
    work of dropping them falls on this baseline's set-up, not on a timed run."""
    with MongoClient(mongo_uri) as client:
        for earlier in BASELINE_DATABASES:
            client.drop_database(earlier)
    BASELINE_DATABASES[:] = [database]
    return run_hops(amqp_uri, mongo_uri, database, queues, work_per_hop, consumers_per_hop, messages, store=store, cpu=cpu)


def hops_alive(processes):
    """True while every hop runs; a hop that died fails the run at once, naming its log."""
    for process in processes:
        if process.exited():
            raise RuntimeError(f"bench hop {process.name} exited: see {process.log_path}")
    return True


# -- the pipeline ------------------------------------------------------------------

def inbound(n, tag, grid_ids, phone=True):
    body = {"source": "bench", "submitted_at": datetime.now(timezone.utc).isoformat(), "external_ref": f"{tag}-{n}",
            "text": f"第{n}号楼的路灯不亮了，请尽快修理（{tag}）", "grid_id": grid_ids[n % len(grid_ids)]}
    if phone:
        body["reporter"] = {"phone": f"139{n % 100000000:08d}"}
    return body


class Pipeline:
    """The stores of a running platform, read directly to time each stage, and notify's
    outbox file, watched while a run is timed. With ``store`` (a :class:`bench.store.BenchStore`),
    what the store spends over each timed run too; with ``cpu`` (a :class:`bench.cpu.CpuMeter`),
    the CPU of its fixed roles and of the processes ``services()`` names by service."""

    def __init__(self, mongo_uri, databases, outbox, store=None, cpu=None, services=None):
        client = MongoClient(mongo_uri, tz_aware=True)
        self.client = client
        self.intake = client[databases["intake"]]["requests"]
        self.cases = client[databases["routing"]]["cases"]
        self.notifications = client[databases["notify"]]["notifications"]
        self.databases = {databases[service] for service in PIPELINE_SERVICES}
        self.outbox = outbox
        self.store = store
        self.cpu = cpu
        self.services = services

    def worker_notices(self):
        """The workers' notices of their new cases that notify sends from now on. Watched in
        its outbox file, as the baselines' last hop counts in a file: polling the store while
        a run is timed would load what is being measured, and only in the pipeline's runs."""
        return OutboxLines(self.outbox, "case_assigned.worker")

    def last_write_at(self, timeout=60, interval=0.05):
        """When the pipeline's services last wrote (to their databases, counted by the store's
        ``top``), once the counters have stayed still for ``WRITES_QUIET_SECONDS``: the writes
        that trail a run's last worker's notice (the residents' notices recorded, the
        tracking of the cases in intake) belong to the run, as baseline (c)'s last hop has
        done all of its writes when it counts a message. Read only after the notices, so
        the run itself is not loaded. ``(when, (store, cpu))``: what the store had spent at
        that moment (its :meth:`~bench.store.BenchStore.usage`) and the processes' CPU (the
        :meth:`~bench.cpu.CpuMeter.reading`), each ``None`` without its meter, since the wait
        for still counters (and its polls of the store) is not the run's."""
        def moved():
            return time.monotonic(), (self.store.usage() if self.store else None, self.cpu.reading() if self.cpu else None)
        last, (moved_at, spent) = store_writes_in(self.client, self.databases), moved()
        deadline = moved_at + timeout
        while time.monotonic() - moved_at < WRITES_QUIET_SECONDS:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the pipeline's writes did not stop within {timeout}s")
            time.sleep(interval)
            written = store_writes_in(self.client, self.databases)
            if written != last:
                last, (moved_at, spent) = written, moved()
        return moved_at, spent

    def done(self, since, count):
        """``count`` requests published since ``since``: each case assigned and its worker told,
        as recorded in the store. (An indexed range query, for the steps not timed.)"""
        told = self.notifications.find({"created_at": {"$gte": since}}, {"kind": 1, "status": 1})
        return sum(1 for n in told if n["kind"] == "case_assigned.worker" and n["status"] == "sent") >= count


def write_commands(client):
    """The insert, update and delete commands the store has counted so far, by namespace
    and kind (its ``top``)."""
    totals = client.admin.command("top")["totals"]
    return {(ns, kind): sections[kind]["count"] for ns, sections in totals.items() if isinstance(sections, dict)
            for kind in StoreWrites.KINDS if sections.get(kind, {}).get("count")}


def store_writes_in(client, databases):
    """Insert, update and delete commands the store has counted in ``databases``."""
    return sum(count for (ns, _), count in write_commands(client).items() if ns.partition(".")[0] in databases)


def publish_burst(amqp_uri, grid_ids, count, tag, rate=None):
    sent = {}
    with Connection(amqp_uri, transport_options={"confirm_publish": True}) as connection:
        started = time.monotonic()
        for n in range(count):
            if rate:
                delay = started + n / rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            body = inbound(n, tag, grid_ids)
            sent[body["external_ref"]] = datetime.now(timezone.utc)
            publish_request(connection, body, message_id=f"{tag}-{n}", source="bench")
    return sent


def pipeline_throughput(amqp_uri, pipeline, grid_ids, count=BURST):
    tag, notices = uuid.uuid4().hex[:8], pipeline.worker_notices()
    if pipeline.store:
        pipeline.store.start_timing()
    if pipeline.cpu:
        pipeline.cpu.start(pipeline.services())
    started = time.monotonic()
    publish_burst(amqp_uri, grid_ids, count, tag)
    wait_for(lambda: notices.count() >= count, 600, interval=0.1)
    ended, (store_spent, cpu_spent) = pipeline.last_write_at()
    rate = count / (ended - started)
    if pipeline.store:
        pipeline.store.stop_timing(count, until=store_spent)
    if pipeline.cpu:
        pipeline.cpu.stop(count, until=cpu_spent)
    log(f"  {rate:.1f} req/s")
    return rate


def pipeline_latency(amqp_uri, pipeline, grid_ids, rate):
    """Publish → case assigned, and → the worker's notice sent, at ``rate`` requests/s."""
    tag, since, notices = uuid.uuid4().hex[:8], datetime.now(timezone.utc), pipeline.worker_notices()
    count = max(20, round(rate * LATENCY_SECONDS))
    sent = publish_burst(amqp_uri, grid_ids, count, tag, rate=rate)
    wait_for(lambda: notices.count() >= count, 600, interval=0.1)
    wait_for(lambda: pipeline.done(since, count), 120, interval=0.5)  # their send times recorded
    by_tracking = {r["tracking_no"]: sent[r["external_ref"]] for r in pipeline.intake.find({"source": "bench", "external_ref": {"$regex": f"^{tag}-"}})}
    assigned, notified = [], []
    for case in pipeline.cases.find({"tracking_no": {"$in": list(by_tracking)}}, {"tracking_no": 1, "timeline": 1}):
        at = next(e["at"] for e in case["timeline"] if e.get("to") == "assigned")
        assigned.append((at - by_tracking[case["tracking_no"]]).total_seconds())
    for note in pipeline.notifications.find({"tracking_no": {"$in": list(by_tracking)}, "kind": "case_assigned.worker"}, {"tracking_no": 1, "sent_at": 1}):
        notified.append((note["sent_at"] - by_tracking[note["tracking_no"]]).total_seconds())
    return {"to_case_assigned": percentiles(assigned), "to_notice_sent": percentiles(notified)}


def percentiles(values):
    ordered = sorted(values)
    pick = lambda q: round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 1)  # noqa: E731
    return {"p50_ms": pick(0.50), "p95_ms": pick(0.95), "p99_ms": pick(0.99), "samples": len(ordered)}


class StoreWrites:
    """The store's writes from one moment on, by collection and kind: commands from the
    store's ``top``, documents from its oplog (one entry a document written)."""

    KINDS = {"insert": "i", "update": "u", "remove": "d"}

    def __init__(self, client):
        self.client = client
        self.commands = write_commands(client)
        last = list(client.local["oplog.rs"].find({}, {"ts": 1}).sort("ts", -1).limit(1))
        self.since = last[0]["ts"] if last else None

    def per_request(self, databases, count):
        """``[{collection, kind, commands, docs_per_command}]`` per request in ``databases``
        (``{database: service}``), the collection named ``<service>_<collection>``."""
        commands = write_commands(self.client)
        docs = Counter((entry["ns"], entry["op"]) for entry in self.client.local["oplog.rs"].find(
            {"ts": {"$gt": self.since}} if self.since else {}, {"ns": 1, "op": 1}))
        operations = []
        for (ns, kind), total in sorted(commands.items()):
            database, _, collection = ns.partition(".")
            made = total - self.commands.get((ns, kind), 0)
            if database in databases and made > 0:
                operations.append({"collection": f"{databases[database]}_{collection}", "source": ns, "kind": kind,
                                   "commands": round(made / count, 3),
                                   "docs_per_command": max(1, round(docs[(ns, self.KINDS[kind])] / made, 2))})
        return operations


def collection_shapes(client, operations):
    """Indexes and a document of each collection the operations touch: the last one
    inserted, as it was inserted (from the oplog), or one as stored now."""
    shapes = {}
    for operation in operations:
        database, _, name = operation["source"].partition(".")
        collection = client[database][name]
        indexes = [{"key": list(spec["key"]), "options": {k: v for k, v in spec.items() if k in ("unique", "sparse", "partialFilterExpression")}}
                   for index_name, spec in collection.index_information().items() if index_name != "_id_"]
        inserted = list(client.local["oplog.rs"].find({"ns": operation["source"], "op": "i"}, {"o": 1}).sort("ts", -1).limit(1))
        sample = inserted[0]["o"] if inserted else collection.find_one() or {}
        shapes[operation["collection"]] = {
            "source": operation["source"], "indexes": indexes, "sample": json.loads(json_util.dumps(sample)),
            "unique": [field for index in indexes if index["options"].get("unique") for field, _ in index["key"]],
        }
    return shapes


def writes_per_request(amqp_uri, mongo_uri, start, pipeline, grid_ids, databases, count=100):
    """Store writes per request at each hop, from the store's own counters, by starting
    the services one after another over the same requests; and each hop's writes by
    collection and kind."""
    client, tag, since = pipeline.client, uuid.uuid4().hex[:8], datetime.now(timezone.utc)
    services = {database: service for service, database in databases.items()}
    before, ops = writes(client), StoreWrites(client)
    publish_burst(amqp_uri, grid_ids, count, tag)
    mine = {"source": "bench", "external_ref": {"$regex": f"^{tag}-"}}
    wait_for(lambda: pipeline.intake.count_documents({**mine, "announce.state": "announced"}) >= count, 120, interval=0.5)
    after_intake, intake_ops, ops = writes(client), ops.per_request(services, count), StoreWrites(client)
    start("routing")
    wait_for(lambda: pipeline.intake.count_documents({**mine, "status": "assigned"}) >= count, 120, interval=0.5)
    time.sleep(1)
    after_routing, routing_ops, ops = writes(client), ops.per_request(services, count), StoreWrites(client)
    start("notify")
    wait_for(lambda: pipeline.done(since, count), 120)
    time.sleep(1)
    after_notify, notify_ops = writes(client), ops.per_request(services, count)
    per_hop = [(after_intake - before) / count, (after_routing - after_intake) / count, (after_notify - after_routing) / count]
    return [round(w, 2) for w in per_hop], [intake_ops, routing_ops, notify_ops]


def hop_plans(client, operations):
    """Each hop's store work for baseline (c): intake's, routing's and notify's writes."""
    hops = []
    for service in PIPELINE_SERVICES:
        own = [operation for operation in operations if operation["collection"].startswith(service + "_")]
        hops.append({"operations": own, "collections": collection_shapes(client, own)})
    return hops


def as_large_as_the_pipelines(client, plans):
    """The plans with each collection as many documents as the pipeline's holds now: its
    indexes as deep, its writes as costly (they grow with every run of the pipeline)."""
    sized = []
    for plan in plans:
        collections = {}
        for name, shape in plan["collections"].items():
            database, _, source = shape["source"].partition(".")
            collections[name] = {**shape, "documents": client[database][source].estimated_document_count()}
        sized.append({**plan, "collections": collections})
    return sized


def load_registry(database, county):
    store = RoutingStore(database)
    store.ensure_indexes({"REGISTRY": {"AREA_INDEX": False}})
    towns, communities, grids, departments = flatten(validate_registry(county))
    store.replace_registry(county["version"], county["county"],
                           {"towns": towns, "communities": communities, "grids": grids, "departments": departments},
                           datetime.now(timezone.utc))


# -- study -------------------------------------------------------------------------

def study_fan_out(study, mongo_uri, notify_database, grid_ids, outbox, notify_logs=()):
    """Seconds from a campaign's due time to the last grid group's notice going out on
    notify's outbox channel. Watched in the outbox file, not the store: polling the
    store would load what is being measured; the store is checked once all went out.
    With ``notify_logs`` (the notify processes' log files), where the time went, from
    study's and notify's own log lines (:func:`fan_out_breakdown`)."""
    notify_lines = [LogLines(path) for path in notify_logs]
    probe = StoreStalls(MongoClient(mongo_uri))
    content = study.as_admin.post(study.url("/api/v1/contents"), json={"title": "主题教育", "body": "学习内容"}, timeout=10).json()
    at = datetime.now(timezone.utc) + timedelta(seconds=2)
    campaign = study.as_admin.post(study.url("/api/v1/campaigns"), timeout=60, json={
        "title": "全县网格课堂", "content_ids": [content["content_id"]], "target": {"scope": "all"},
        "schedule": {"at": at.isoformat()}, "reminder": {"after_hours": 24, "max": 0}}).json()
    notices = OutboxLines(outbox, "campaign_due.")
    with probe:
        wait_for(lambda: notices.count() >= len(grid_ids), 600, interval=0.1)
    seconds = round((datetime.now(timezone.utc) - at).total_seconds(), 2)
    notifications = MongoClient(mongo_uri)[notify_database]["notifications"]
    wait_for(lambda: notifications.count_documents({"campaign_id": campaign["campaign_id"], "status": "sent"}) >= len(grid_ids), 120, interval=1)
    breakdown = {}
    if notify_lines:
        def logged():
            return sum(line["sent"] for lines in notify_lines for line in lines.new("notifications sent") if line["channel"] == "outbox")
        try:
            # each send logs its line once its outcomes are stored: the last may still be on its way
            wait_for(lambda: logged() >= len(grid_ids), 30, interval=0.2)
            breakdown = fan_out_breakdown(LogLines(study.process.log_path, from_start=True), notify_lines, campaign["campaign_id"])
        except (TimeoutError, LookupError) as missing:  # the figure stands without its explanation
            breakdown = {"breakdown_unavailable": f"{type(missing).__name__}: {missing}"}
    return {"grid_groups": len(grid_ids), "seconds_from_due_to_last_notice": seconds, **breakdown,
            "store_longest_commit_seconds": probe.longest}, campaign["campaign_id"]


class StoreStalls:
    """While in use, a one-document write to a database of its own every ``every`` seconds:
    ``longest``, the longest any took until the end of use (one still waiting then counts as
    far as it got). SecantusDB at times makes every command wait seconds at once, none of them
    the cause (its profiler shows them all starting within milliseconds and ending together):
    a figure timed across such a stall says more about the store than about the platform."""

    def __init__(self, client, every=0.25):
        self.client, self.every = client, every  # closed at the end of use
        self.writes = []  # (started, ended or None while waiting)
        self.longest, self.stop, self.thread = None, threading.Event(), None

    def __enter__(self):
        self.thread = threading.Thread(target=self._probe, daemon=True)
        self.thread.start()
        return self

    def _probe(self):
        commits = self.client["bench_store_probe"]["commits"]
        while not self.stop.is_set():
            self.writes.append([time.monotonic(), None])
            try:
                commits.insert_one({"at": datetime.now(timezone.utc)})
            except Exception as exc:  # a write that failed is not a stall to the end; the probe stops
                self.writes[-1][1] = time.monotonic()
                log(f"  store probe stopped: {type(exc).__name__}: {exc}")
                return
            self.writes[-1][1] = time.monotonic()
            self.stop.wait(self.every)

    def __exit__(self, *exc):
        ended = time.monotonic()
        self.stop.set()
        self.thread.join(timeout=120)  # a write waiting out a stall ends with it
        self.client.close()
        self.longest = round(max((min(finished or ended, ended) - started for started, finished in self.writes), default=0.0), 2)


class JsonLines:
    """The JSON lines a process appends to a file from now on (or from its start), read as
    they come: a line being written as reading starts belongs to what went before, one
    still being written waits for its end, and one that is not JSON (a library's own print)
    is passed over."""

    def __init__(self, path, from_start=False):
        self.path = Path(path)
        self.offset = 0 if from_start or not self.path.exists() else self.path.stat().st_size
        self.mid_line = self.offset > 0 and not self._ends_a_line(self.offset)

    def _ends_a_line(self, offset):
        with open(self.path, "rb") as lines:
            lines.seek(offset - 1)
            return lines.read(1) == b"\n"

    def fresh(self):
        """The records written since the last call (since this was made, the first time)."""
        if not self.path.exists():
            return []
        with open(self.path, "rb") as lines:
            lines.seek(self.offset)
            chunk = lines.read()
        read = chunk[:chunk.rfind(b"\n") + 1]
        self.offset += len(read)
        whole = read.splitlines()
        if self.mid_line and whole:
            whole, self.mid_line = whole[1:], False
        records = []
        for line in whole:
            try:
                records.append(json.loads(line))
            except ValueError:
                continue
        return records


class LogLines(JsonLines):
    """A service's JSON log lines written to its file from now on (or from its start)."""

    def __init__(self, path, from_start=False):
        super().__init__(path, from_start)
        self.seen = []

    def new(self, message):
        """The lines logged with ``message`` since this was made."""
        self.seen += self.fresh()
        return [record for record in self.seen if record.get("message") == message]


def fan_out_breakdown(study_lines, notify_lines, campaign_id):
    """Where a fan-out's time went, as the services logged it: study's round (how late it
    was taken, how long the broker took its material, the whole round) and notify's sends
    of its notices (how many, the longest any notice waited from being stored to its send,
    and the longest and total time of each stage of a send)."""
    # the last, should the round have been taken again after a process died
    round_line = [line for line in study_lines.new("campaign round fanned out") if line["campaign_id"] == campaign_id][-1]
    sends = [line for lines in notify_lines for line in lines.new("notifications sent") if line["channel"] == "outbox"]
    stages = ("claiming_seconds", "sending_seconds", "recording_and_announcing_seconds")
    return {
        "study_round": {key: round_line[key] for key in ("taken_late_seconds", "publishing_seconds", "round_seconds")},
        "notify_sends": {
            "sends": len(sends), "notifications": sum(line["notifications"] for line in sends),
            "sent": sum(line["sent"] for line in sends),
            "most_waited_seconds": max((line["waited_seconds"] for line in sends), default=None),
            **{f"longest_{stage}": max((line[stage] for line in sends), default=None) for stage in stages},
            **{f"total_{stage}": round(sum(line[stage] for line in sends), 3) for stage in stages},
        },
    }


class OutboxLines(JsonLines):
    """Notices of one kind (by its prefix) that notify appends to its outbox file from now
    on, read as they come: each notification once, though a send repeated after its claim
    ran out is written twice."""

    def __init__(self, path, kind_prefix):
        super().__init__(path)
        self.kind_prefix, self.ids = kind_prefix, set()

    def count(self):
        self.ids.update(notice["id"] for notice in self.fresh() if notice["kind"].startswith(self.kind_prefix))
        return len(self.ids)


def check_in_rate(study, campaign_id, member_ids, threads=8):
    queue = list(member_ids)
    lock = threading.Lock()

    def worker():
        session = study.as_user("editor")  # a study editor records for any grid
        while True:
            with lock:
                if not queue:
                    return
                member = queue.pop()
            session.post(study.url("/api/v1/checkins"), json={"campaign_id": campaign_id, "member_id": member, "kind": "read"}, timeout=30).raise_for_status()

    started = time.monotonic()
    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return len(member_ids) / (time.monotonic() - started)


# -- the run -------------------------------------------------------------------------

def median(values):
    return round(statistics.median(values), 1)


def paired_ratio(baselines, pipelines):
    """The median of each pair of runs' ratio, pipeline to baseline: not a ratio of medians,
    whose runs may be minutes apart."""
    return round(statistics.median(pipeline / baseline for baseline, pipeline in zip(baselines, pipelines)), 3)


def alternating(runs, *measures, settle=SETTLE_SECONDS):
    """Each measure in turn, ``runs`` times over, the order reversed every other round
    (A B, B A, A B): figures to be compared are taken one right after the other, so that
    a change in the machine's load meanwhile (another tenant, the disk) weighs on both
    alike, and neither always follows the other. Each starts ``settle`` seconds after the
    one before. Each measure's figures, in order."""
    figures = [[] for _ in measures]
    for run in range(runs):
        turns = list(zip(figures, measures))
        for taken, measure in (turns if run % 2 == 0 else turns[::-1]):
            time.sleep(settle)
            taken.append(measure())
    return figures


def first_in_each_pair(runs, names):
    """Which of ``names`` (two) :func:`alternating` runs first in each of ``runs`` pairs."""
    return [names[run % 2] for run in range(runs)]


def county_grid_ids(county):
    return [g["id"] for t in county["towns"] for c in t["communities"] for g in c["grids"]]


def trust_local_identity(stack, directory):
    """The services trust a local identity provider, as in the tests; the bench calls as its users."""
    identity = stack.enter_context(running_identity(directory))
    os.environ.update(identity.service_settings())
    set_active_identity(identity)


def service_settings(outbox):
    """The services' settings for the bench: every notice to notify's outbox file."""
    return {**QUIET_LOCAL, "NOTIFY_OUTBOX_PATH": str(outbox), "ROUTING_AREA_INDEX": "false", "ANNOUNCE_INTERVAL_SECONDS": "1",
            "RETRY_DELAY_SECONDS": "1",
            # every request a case of its own: the bench's texts are near-duplicates
            "DUPLICATE_WINDOW_HOURS": "0"}


def main():
    started = time.monotonic()
    results = {"machine": machine_facts(), "runs_per_figure": RUNS, "pairs_for_the_ratio_to_baseline_c": PAIRS, "burst_requests": BURST}
    county = build_county()
    grid_ids = county_grid_ids(county)
    results["store_cpu"] = store_cpu()
    pinned = pinned_cpus()
    with tempfile.TemporaryDirectory() as scratch, throwaway_vhost() as amqp_uri, ExitStack() as stack:
        scratch = Path(scratch)
        store = stack.enter_context(own_store(scratch / "store", cpus=pinned))
        mongo_uri = store.uri
        outbox = scratch / "outbox.jsonl"  # notify's only channel here
        trust_local_identity(stack, scratch / "identity")
        run_id = uuid.uuid4().hex[:6]
        databases = {name: f"bench_{name}_{run_id}" for name in ("intake", "routing", "notify", "study", "care")}
        processes = {}

        def start(name):
            service = stack.enter_context(running_service(name, amqp_uri=amqp_uri, mongo_uri=mongo_uri, log_dir=scratch, database=databases[name],
                                                          extra_env={**service_settings(outbox),
                                                                     **({"ROUTING_URL": processes["routing"][0].base_url} if name in ("study", "care") else {})}))
            processes.setdefault(name, []).append(service)
            return service

        log("baseline (a): kombu → store")
        results["baseline_a_direct_msgs_per_s"] = median([baseline_direct(amqp_uri, mongo_uri) for _ in range(RUNS)])

        start("intake")
        meter = CpuMeter({"store": store.pid, "broker": broker_pid()})
        pipeline = Pipeline(mongo_uri, databases, outbox, store=store, cpu=meter, services=lambda: {
            name: [service.process.pid for service in processes[name]] for name in PIPELINE_SERVICES})
        load_registry(pipeline.client[databases["routing"]], county)  # before routing consumes anything

        log("store writes per request, hop by hop")
        per_hop, staged_operations = writes_per_request(amqp_uri, mongo_uri, start, pipeline, grid_ids, databases)
        results["store_writes_per_request"] = {"intake": per_hop[0], "routing_and_tracking": per_hop[1], "notify": per_hop[2], "total": round(sum(per_hop), 2)}
        results["store_operations_per_request"] = dict(zip(("intake", "routing_and_tracking", "notify"), staged_operations))

        log("baseline (b): the same three hops with bare kombu consumers")
        hop_writes = [max(1, round(w)) for w in per_hop]
        results["baseline_b_three_hops_req_per_s"] = median([baseline_hops(amqp_uri, mongo_uri, hop_writes) for _ in range(RUNS)])
        results["baseline_b_writes_per_hop"] = hop_writes

        study, _ = start("study"), start("care")
        time.sleep(2)  # past their start-up work
        results["memory_idle_mb"] = {name: rss_mb(services[0].process.pid) for name, services in processes.items()}
        log("pipeline, one process per service")
        peak = {}
        sampler_stop = threading.Event()

        def sample():
            while not sampler_stop.is_set():
                for name, services in processes.items():
                    for service in services:
                        peak[name] = max(peak.get(name, 0), rss_mb(service.process.pid) or 0)
                time.sleep(0.5)

        threading.Thread(target=sample, daemon=True).start()
        under_load = StoreWrites(pipeline.client)
        results["pipeline_req_per_s"] = median([pipeline_throughput(amqp_uri, pipeline, grid_ids) for _ in range(RUNS)])
        # the last run writes on after its workers' notices (the residents' notices, the tracking): wait for
        # those too. What the pipeline wrote while it was measured: under a burst, notify batches less than
        # when it starts on a backlog, as it does in the hop-by-hop count above
        time.sleep(1)
        operations = under_load.per_request({databases[service]: service for service in PIPELINE_SERVICES}, RUNS * BURST)
        results["store_operations_per_request_in_throughput_runs"] = operations

        log("baseline (c): the same three hops doing exactly the pipeline's store writes, in turn with the pipeline's")
        plans = hop_plans(pipeline.client, operations)

        def in_turns():
            """Baseline (c) and the pipeline in turns: their rates, the ratio, what the store spent
            in each run, and the CPU a request of every process taking part."""
            # each run's rate, then what the store and the processes spent over it (read once the run is over)
            runs_c, runs_pipeline = alternating(
                PAIRS, lambda: (baseline_same_operations(amqp_uri, mongo_uri, as_large_as_the_pipelines(pipeline.client, plans), scratch, store=store, cpu=meter),
                                store.last_run, meter.last_run),
                lambda: (pipeline_throughput(amqp_uri, pipeline, grid_ids), store.last_run, meter.last_run))
            (same, spent_c, cpu_c), (beside, spent_pipeline, cpu_pipeline) = zip(*runs_c), zip(*runs_pipeline)
            return {"baseline_c_same_operations_req_per_s": median(same), "baseline_c_each_run_req_per_s": [round(rate, 1) for rate in same],
                    "pipeline_beside_baseline_c_req_per_s": [round(rate, 1) for rate in beside], "pipeline_to_same_ops_ratio": paired_ratio(same, beside),
                    "first_in_each_pair": first_in_each_pair(PAIRS, ("baseline_c", "pipeline")),
                    "store_spent_in_turns": {"baseline_c": list(spent_c), "pipeline": list(spent_pipeline)},
                    "cpu_ms_per_request_in_turns": {"baseline_c": list(cpu_c), "pipeline": list(cpu_pipeline)}}
        results.update(in_turns())
        if pinned:
            log("the same turns with the store on every CPU")
            store.run_on(os.sched_getaffinity(0))
            results["store_on_every_cpu"] = in_turns()
            store.run_on(pinned)
        offered = round(OFFERED_SHARE * results["pipeline_req_per_s"], 1)
        log(f"latency at {OFFERED_SHARE:.0%} of the capacity just measured: {offered} req/s")
        results["offered_load_req_per_s"] = offered
        results["latency_at_offered_load"] = pipeline_latency(amqp_uri, pipeline, grid_ids, offered)

        log("pipeline, two routing and two notify processes")
        start("routing")
        start("notify")
        results["pipeline_2_routing_2_notify_req_per_s"] = median([pipeline_throughput(amqp_uri, pipeline, grid_ids) for _ in range(RUNS)])

        log("study fan-out to every grid group, and check-ins")
        members = [{"member_id": f"bm-{grid}", "name": "周婷艳", "grid_id": grid} for grid in grid_ids]
        study.as_admin.post(study.url("/api/v1/members/import"), json={"members": members}, timeout=300).raise_for_status()
        # like every figure, a median: one fan-out can meet a stall of the broker's or the store's disk
        notify_logs = [service.process.log_path for service in processes["notify"]]
        fan_outs = [study_fan_out(study, mongo_uri, databases["notify"], grid_ids, outbox, notify_logs) for _ in range(RUNS)]
        seconds = [fan_out["seconds_from_due_to_last_notice"] for fan_out, _ in fan_outs]
        log(f"  fan-outs took {seconds} s")
        results["study_fan_out"] = {"grid_groups": len(grid_ids), "seconds_from_due_to_last_notice": median(seconds), "each_run_seconds": seconds,
                                    "each_run": [fan_out for fan_out, _ in fan_outs]}
        campaign_id = fan_outs[-1][1]
        results["study_check_ins_per_s"] = round(check_in_rate(study, campaign_id, [m["member_id"] for m in members[:1000]]), 1)
        sampler_stop.set()
        # the pipeline's services under the bursts, study under its fan-out and check-ins; care has no load here
        results["memory_under_load_peak_mb"] = peak

    results["pipeline_to_baseline_ratio"] = round(results["pipeline_req_per_s"] / results["baseline_b_three_hops_req_per_s"], 3)
    results["pipeline_2x_to_baseline_ratio"] = round(results["pipeline_2_routing_2_notify_req_per_s"] / results["baseline_b_three_hops_req_per_s"], 3)
    results["bench_seconds"] = round(time.monotonic() - started)
    output = ROOT / "bench" / "results.json"
    output.write_text(json.dumps(results, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print_table(results)


def spent_in_turns(figures):
    """Store CPU (ms) and context switches a request in each run, baseline (c) | pipeline."""
    def runs(spent):
        return ", ".join(f"{run['cpu_ms_per_request']} ms/{run['context_switches_per_request']} cs" for run in spent)
    spent = figures["store_spent_in_turns"]
    return f"{runs(spent['baseline_c'])} | {runs(spent['pipeline'])}"


def cpu_in_turns(figures):
    """Each run's CPU (ms) a request, all processes together, baseline (c) | pipeline."""
    cpu = figures["cpu_ms_per_request_in_turns"]
    return f"{', '.join(str(run['total']) for run in cpu['baseline_c'])} | {', '.join(str(run['total']) for run in cpu['pipeline'])}"


def slowest_fan_out(figures):
    slowest = max(figures["each_run"], key=lambda run: run["seconds_from_due_to_last_notice"])
    return {key: slowest.get(key) for key in ("study_round", "notify_sends", "store_longest_commit_seconds")}


def print_table(results):
    rows = [
        ("baseline (a) kombu → store", f"{results['baseline_a_direct_msgs_per_s']} msg/s"),
        ("baseline (b) 3 bare hops, same writes", f"{results['baseline_b_three_hops_req_per_s']} req/s  (writes/hop {results['baseline_b_writes_per_hop']})"),
        ("baseline (c) 3 bare hops, same store ops", f"{results['baseline_c_same_operations_req_per_s']} req/s  (in turn with the pipeline at "
                                                     f"{results['pipeline_beside_baseline_c_req_per_s']} req/s, ratio {results['pipeline_to_same_ops_ratio']})"),
        ("  store spent a request, (c) | pipeline", spent_in_turns(results)),
        ("  CPU a request, every process, (c) | pipeline", cpu_in_turns(results)),
        *([("  the same, store on every CPU", f"ratio {results['store_on_every_cpu']['pipeline_to_same_ops_ratio']}; "
                                             f"{spent_in_turns(results['store_on_every_cpu'])}")] if "store_on_every_cpu" in results else []),
        ("pipeline, 1 process per service", f"{results['pipeline_req_per_s']} req/s  ratio (b) {results['pipeline_to_baseline_ratio']}"),
        ("pipeline, 2 routing + 2 notify", f"{results['pipeline_2_routing_2_notify_req_per_s']} req/s  ratio {results['pipeline_2x_to_baseline_ratio']}"),
        ("store writes per request", f"{results['store_writes_per_request']}"),
        (f"latency @{results['offered_load_req_per_s']} req/s → assigned", f"{results['latency_at_offered_load']['to_case_assigned']}"),
        (f"latency @{results['offered_load_req_per_s']} req/s → notice sent", f"{results['latency_at_offered_load']['to_notice_sent']}"),
        ("study fan-out", f"{results['study_fan_out']['seconds_from_due_to_last_notice']} s to {results['study_fan_out']['grid_groups']} groups "
                          f"(each run {results['study_fan_out']['each_run_seconds']})"),
        ("  the slowest, as study and notify logged it", f"{slowest_fan_out(results['study_fan_out'])}"),
        ("check-ins", f"{results['study_check_ins_per_s']} /s"),
        ("memory idle (MB)", f"{results['memory_idle_mb']}"),
        ("memory under load, peak (MB)", f"{results['memory_under_load_peak_mb']}"),
    ]
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        print(f"{label:<{width}}  {value}")


if __name__ == "__main__":
    main()
