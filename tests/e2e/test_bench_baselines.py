"""The bench's baselines time what they say: a run ends when every message has been
through every hop, not when the hops together have handled as many messages, and
baseline (c) replays the documents a command the pipeline's commands touched. The
pipeline's runs are timed like the baselines' (until the last write they cause, without
polling the store while they run), and compared with baseline (c)'s in pairs of runs made
one after the other."""
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections import deque
from types import SimpleNamespace

import pytest
from eventlet.patcher import original
from kombu import Connection
from pymongo import MongoClient

from bench import run as bench
from bench import store_costs
from bench.cpu import CpuMeter
from bench.hop import SameOperations, hop_queue, relay
from bench.store import BenchStore, own_store, store_cpu
from bench.run import (LogLines, OutboxLines, Pipeline, StoreStalls, alternating, baseline_run, fan_out_breakdown, first_in_each_pair, paired_ratio,
                       pipeline_throughput, run_hops, store_writes_in)
from devstack.processes import start_store, wait_until

from tests.support.broker import drain
from tests.support.ports import free_port

pytestmark = pytest.mark.e2e


def test_a_run_of_three_hops_ends_when_the_last_hop_has_every_message(amqp_uri, mongo_uri, scratch_database):
    tag = uuid.uuid4().hex[:6]
    queues = [f"bench.test{n}.{tag}" for n in range(3)]

    run_hops(amqp_uri, mongo_uri, scratch_database.name, queues, ["1", "1", "1"], [1, 4, 2], messages=60)

    # each hop writes one document a message; the last one's goes to "done"
    assert scratch_database["done"].count_documents({}) == 60
    assert sorted(scratch_database["done"].distinct("message")) == list(range(60))


def test_a_hop_handles_as_many_messages_at_once_as_its_consumers_each_passed_on_before_its_consumer_takes_the_next(amqp_uri):
    """One handler inside another's wait for a confirm can wait for ever (an ack the broker
    sends for both answers the inner wait); the hop overlaps messages with consumers of
    its own instead."""
    tag = uuid.uuid4().hex[:6]
    in_queue, out_queue, count, consumers = f"bench.relay-in.{tag}", f"bench.relay-out.{tag}", 200, 4
    with Connection(amqp_uri) as connection:
        for queue in (in_queue, out_queue):
            hop_queue(queue)(connection.default_channel).declare()
        producer = connection.Producer()
        for n in range(count):
            producer.publish({"n": n}, routing_key=in_queue, serializer="json")
    lock = threading.Lock()
    under_way, most_under_way, under_way_by_thread, passed_on, taken_too_soon = [0], [0], {}, [], []

    def store_work(body):
        with lock:
            under_way[0] += 1
            most_under_way[0] = max(most_under_way[0], under_way[0])
            mine = under_way_by_thread[threading.get_ident()] = under_way_by_thread.get(threading.get_ident(), 0) + 1
            if mine > 1:  # its consumer had not passed the one before on
                taken_too_soon.append(body["n"])
        time.sleep(0.02)  # a store's round trip: what consumers overlap

    def done():
        with lock:
            under_way[0] -= 1
            under_way_by_thread[threading.get_ident()] -= 1
            passed_on.append(1)

    hop = threading.Thread(target=relay, args=(amqp_uri, in_queue, out_queue, store_work, consumers),
                           kwargs={"done": done, "keep_going": lambda: len(passed_on) < count}, daemon=True)
    hop.start()
    hop.join(timeout=60)

    assert sorted(json.loads(m.body)["n"] for m in drain(amqp_uri, out_queue, timeout=10, expected=count)) == list(range(count))
    assert taken_too_soon == []
    assert len(under_way_by_thread) == consumers
    assert most_under_way[0] == consumers


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")  # the consumers' failure is the point
def test_a_hop_whose_consumer_cannot_start_fails_instead_of_waiting_for_it(amqp_uri):
    queue = f"bench.classic.{uuid.uuid4().hex[:6]}"
    with Connection(amqp_uri) as connection:
        connection.default_channel.queue_declare(queue, durable=True)  # not the quorum queue a hop declares
    failures = []

    def run_hop():
        try:
            relay(amqp_uri, queue, "-", lambda body: None, consumers=2)
        except threading.BrokenBarrierError as failure:
            failures.append(failure)

    hop = threading.Thread(target=run_hop, daemon=True)
    hop.start()
    hop.join(timeout=30)
    with Connection(amqp_uri) as connection:
        connection.default_channel.queue_delete(queue)
    assert not hop.is_alive() and len(failures) == 1


class UpdateAndDeleteAtOnce:
    """A collection whose update and delete each wait for the other: two of a hop's
    consumers making them at the same moment."""

    def __init__(self):
        self.both_under_way = threading.Barrier(2)
        self.updated, self.deleted = [], []

    def update_one(self, where, change):
        self.updated.append(where["_id"])
        self.both_under_way.wait(timeout=10)

    def delete_one(self, where):
        self.deleted.append(where["_id"])
        self.both_under_way.wait(timeout=10)


def test_baseline_cs_consumers_updating_and_deleting_at_once_keep_no_deleted_document_and_every_other():
    collection = UpdateAndDeleteAtOnce()
    replay = SameOperations({"notes": collection}, {"operations": [], "collections": {"notes": {"indexes": [], "sample": {}, "unique": []}}})
    replay.targets["notes"] = deque(["a", "b", "c", "d"])
    consumers = [threading.Thread(target=replay.run, args=({"collection": "notes", "kind": kind}, 1)) for kind in ("delete", "update")]
    for consumer in consumers:
        consumer.start()
    for consumer in consumers:
        consumer.join(timeout=20)

    assert (collection.deleted, collection.updated) == (["a"], ["b"])
    assert sorted(replay.targets["notes"]) == ["b", "c", "d"]  # "b" to be updated again later, "a" gone


class Commands:
    """A collection that notes each command made of it and the documents it names."""

    def __init__(self):
        self.made = []

    def __getattr__(self, command):
        return lambda where, *change: self.made.append((command, where["_id"]))


def test_baseline_c_writes_one_document_as_the_services_write_one_and_several_in_one_command():
    collection = Commands()
    replay = SameOperations({"cases": collection}, {"operations": [], "collections": {"cases": {"indexes": [], "sample": {}, "unique": []}}})
    replay.targets["cases"] = deque(["a", "b", "c", "d", "e", "f"])
    for kind, docs in (("update", 1), ("update", 2), ("delete", 1), ("delete", 2)):
        replay.run({"collection": "cases", "kind": kind}, docs)

    assert collection.made == [("update_one", "a"), ("update_many", {"$in": ["b", "c"]}), ("delete_one", "d"), ("delete_many", {"$in": ["e", "f"]})]


def test_a_run_of_hops_records_the_cpu_of_its_hops_beside_the_fixed_roles(amqp_uri, mongo_uri, scratch_database):
    tag = uuid.uuid4().hex[:6]
    idle = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        meter = CpuMeter({"idle": idle.pid, "broker": None})
        run_hops(amqp_uri, mongo_uri, scratch_database.name, [f"bench.cpu{n}.{tag}" for n in range(2)], ["2", "1"], [1, 1], messages=200, cpu=meter)
    finally:
        idle.kill()
        idle.wait()
    assert set(meter.last_run) == {"idle", "hops", "total"}  # a role without a process is left out
    assert meter.last_run["hops"] > meter.last_run["idle"]


def test_the_cpu_of_a_role_is_the_sum_of_its_processes_over_the_run_only():
    spin = "import sys, time\nwhile sys.stdin.readline():\n    end = time.process_time() + 0.2\n    while time.process_time() < end: pass\n    print(flush=True)\n"
    workers = [subprocess.Popen([sys.executable, "-c", spin], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) for _ in range(2)]

    def work(worker):
        worker.stdin.write("go\n")
        worker.stdin.flush()
        worker.stdout.readline()

    try:
        for _ in range(3):
            work(workers[0])  # before the run: not counted
        meter = CpuMeter({})
        meter.start({"both": [worker.pid for worker in workers], "first": [workers[0].pid]})
        for worker in workers:
            work(worker)
        spent = meter.stop(requests=10)
    finally:
        for worker in workers:
            worker.kill()
            worker.wait()
    # as much work each in the run; the first one's work before it is not the run's
    assert 0 < spent["first"] < spent["both"]
    assert spent["both"] == pytest.approx(2 * spent["first"], rel=0.25)


def test_a_process_that_ends_during_a_timed_run_is_named_by_its_role():
    ending = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.readline()"], stdin=subprocess.PIPE)
    meter = CpuMeter({})
    meter.start({"routing": [ending.pid]})
    ending.communicate(b"\n")
    with pytest.raises(RuntimeError, match="'routing' ended"):
        meter.stop(requests=1)


def test_baseline_c_touches_as_many_documents_a_command_as_the_pipeline_did_on_average(scratch_database):
    plan = {"operations": [{"collection": "notes", "kind": "insert", "commands": 1.0, "docs_per_command": 1.5}],
            "collections": {"notes": {"indexes": [], "sample": {"text": "已派单"}, "unique": []}}}
    replay = SameOperations(scratch_database, plan)
    replay.prepare(seeded=0)
    for n in range(4):
        replay({"n": n})
    assert scratch_database["notes"].count_documents({}) == 6  # 1, 2, 1, 2


def test_baseline_c_starts_each_run_on_collections_as_large_as_the_pipelines_are_then(scratch_database):
    pipelines = scratch_database.client[f"{scratch_database.name}_pipeline"]
    pipelines["cases"].insert_many([{"status": "assigned", "n": n} for n in range(1234)])
    plans = [{"operations": [], "collections": {"routing_cases": {"source": f"{pipelines.name}.cases", "indexes": [{"key": [["status", 1]], "options": {}}],
                                                                     "sample": {"status": "assigned"}, "unique": []}}}]
    [sized] = bench.as_large_as_the_pipelines(scratch_database.client, plans)
    replay = SameOperations(scratch_database, sized)
    replay.prepare(seeded=150)
    pipelines["cases"].insert_one({"status": "closed"})  # after the run was planned: not this run's
    assert scratch_database["routing_cases"].count_documents({}) == 1234
    assert len(replay.targets["routing_cases"]) == 1234
    scratch_database.client.drop_database(pipelines.name)


class StoreNotToBeRead:
    def __getattr__(self, name):
        raise AssertionError(f"the timed run read the pipeline's collections ({name})")


def test_a_timed_pipeline_run_ends_on_this_runs_worker_notices_in_notify_outbox_and_reads_no_collection(tmp_path, mongo_uri, monkeypatch):
    outbox = tmp_path / "outbox.jsonl"
    numbers = iter(range(100))
    notice = lambda kind: json.dumps({"id": f"n{next(numbers)}", "kind": kind}) + "\n"  # noqa: E731
    outbox.write_text(notice("case_assigned.worker"), encoding="utf-8")  # of an earlier run
    pipeline = Pipeline(mongo_uri, {"intake": "unused", "routing": "unused", "notify": "unused"}, outbox)
    pipeline.notifications = pipeline.intake = pipeline.cases = StoreNotToBeRead()

    def notify_sends_all_but_the_last_workers_notice(amqp_uri, grid_ids, count, tag, rate=None):
        with open(outbox, "a", encoding="utf-8") as lines:
            for _ in range(count - 1):
                lines.write(notice("case_assigned.resident") + notice("case_assigned.worker"))
            lines.write(notice("case_assigned.resident"))

    finished = []

    def checked_before_and_after_the_last_notice(check, timeout, interval=0.05):
        finished.append(check())
        with open(outbox, "a", encoding="utf-8") as lines:
            lines.write(notice("case_assigned.worker"))
        finished.append(check())

    monkeypatch.setattr(bench, "publish_burst", notify_sends_all_but_the_last_workers_notice)
    monkeypatch.setattr(bench, "wait_for", checked_before_and_after_the_last_notice)

    pipeline_throughput("amqp://unused", pipeline, ["g1"], count=5)

    assert finished == [False, True]


def test_figures_to_compare_are_taken_in_turn_run_after_run_neither_always_first():
    taken = []
    same, beside = alternating(3, lambda: taken.append("baseline") or len(taken), lambda: taken.append("pipeline") or len(taken), settle=0)

    assert taken == ["baseline", "pipeline", "pipeline", "baseline", "baseline", "pipeline"]
    assert (same, beside) == ([1, 4, 5], [2, 3, 6])


def test_each_pairs_first_run_is_recorded_as_taken_each_side_as_often_in_an_even_number():
    taken = []
    alternating(4, lambda: taken.append("baseline_c"), lambda: taken.append("pipeline"), settle=0)

    recorded = first_in_each_pair(4, ("baseline_c", "pipeline"))
    assert recorded == taken[::2]
    assert recorded.count("baseline_c") == recorded.count("pipeline")


def test_the_ratio_is_the_median_of_each_pairs_not_a_ratio_of_medians():
    # pairs 0.9, 0.8 and 0.5: the medians' ratio would be 30/40 = 0.75
    assert paired_ratio([40, 30, 60], [36, 24, 30]) == 0.8


def test_notices_are_counted_once_each_of_their_kind_from_the_next_whole_line(tmp_path):
    outbox = tmp_path / "outbox.jsonl"
    line = lambda notice_id, kind: json.dumps({"id": notice_id, "kind": kind}) + "\n"  # noqa: E731
    earlier = line("n0", "case_assigned.worker")
    # a notice of an earlier run is being written as counting starts
    outbox.write_text(earlier[:10], encoding="utf-8")
    notices = OutboxLines(outbox, "case_assigned.worker")
    with open(outbox, "a", encoding="utf-8") as lines:
        lines.write(earlier[10:] + line("n1", "case_assigned.worker") + line("n2", "case_assigned.resident")
                    + line("n1", "case_assigned.worker") + line("n3", "case_assigned.worker"))

    # n1 sent twice (its claim ran out) counts once
    assert notices.count() == 2


def test_the_pipelines_last_write_is_taken_once_its_counters_stay_still(mongo_uri, scratch_database):
    # what the store and the processes spent stand here for when they were read
    pipeline = Pipeline(mongo_uri, {"intake": scratch_database.name, "routing": "unused", "notify": "unused"}, "unused",
                        store=SimpleNamespace(usage=time.monotonic), cpu=SimpleNamespace(reading=time.monotonic))
    finished = []

    def trailing_writes():
        for n in range(20):
            scratch_database["requests"].insert_one({"n": n})
        finished.append(time.monotonic())

    writer = threading.Thread(target=trailing_writes)
    writer.start()
    while not scratch_database["requests"].find_one():  # the writes under way when it starts
        time.sleep(0.01)
    last, (store_spent, cpu_spent) = pipeline.last_write_at()
    writer.join()

    assert last >= finished[0]
    # read when the counters last moved, not once they had stayed still
    assert last <= store_spent < last + bench.WRITES_QUIET_SECONDS
    assert last <= cpu_spent < last + bench.WRITES_QUIET_SECONDS
    assert store_writes_in(pipeline.client, {scratch_database.name}) >= 20


def test_a_baseline_drops_this_benchs_earlier_baselines_database_and_no_other(amqp_uri, mongo_uri):
    client = MongoClient(mongo_uri)
    # named as every bench names its baselines
    others, first, second = (f"bench_{uuid.uuid4().hex[:6]}" for _ in range(3))
    client[others]["kept"].insert_one({"by": "another bench on the same store"})
    for database in (first, second):
        baseline_run(amqp_uri, mongo_uri, database, [f"bench.drop.{database}"], ["1"], [1], messages=5)

    names = client.list_database_names()
    assert first not in names
    assert second in names and others in names
    for database in (second, others):
        client.drop_database(database)


def test_store_costs_replays_captured_commands_from_several_connections_and_counts_updates_that_found_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(store_costs, "REQUESTS", 4)
    # as the store's profiler records them, with what the driver added
    inserts = [{"ns": "capture_intake.requests", "op": "insert",
                "command": {"insert": "requests", "documents": [{"_id": f"r{n}", "tracking_no": f"T{n}", "idempotency_key": f"k{n}"}],
                            "ordered": True, "lsid": {"id": "ignored"}, "$db": "capture_intake"}} for n in range(4)]
    nowhere = {"ns": "capture_intake.requests", "op": "update",
               "command": {"update": "requests", "updates": [{"q": {"_id": "no such request"}, "u": {"$set": {"status": "assigned"}}}],
                           "$db": "capture_intake"}}

    _, _, found_nothing = store_costs.replay(tmp_path, inserts + [nowhere], connections=2)

    assert found_nothing == 1
    # what the driver added to each is left out when it is sent again
    with own_store(tmp_path / "again") as store:
        client = store_costs.prepared(MongoClient(store.uri))
        for entry in inserts:
            store_costs.run(client, entry)
        assert client["capture_intake"]["requests"].count_documents({}) == 4


def test_store_costs_fails_a_replay_whose_command_the_store_refuses(tmp_path):
    accepted = {"ns": "capture_intake.requests", "op": "insert",
               "command": {"insert": "requests", "documents": [{"_id": "r1", "tracking_no": "T1", "idempotency_key": "k1"}], "ordered": True}}
    bad = {"ns": "capture_intake.requests", "op": "command", "command": {"noSuchCommand": 1}}

    with pytest.raises(Exception, match="noSuchCommand|no such"):
        store_costs.replay(tmp_path, [accepted, bad], connections=2)


def test_store_costs_times_only_updates_that_each_cleared_the_outbox(tmp_path):
    # an update that matched nothing would time no update at all: it raises instead
    store_costs.conditional_updates(tmp_path, rounds=1, per_round=3)


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="pinning to one CPU of one changes nothing")
def test_the_bench_store_runs_on_its_cpu_with_the_threads_it_starts_for_later_connections(tmp_path):
    usable = os.sched_getaffinity(0)
    cpu = max(usable)

    def cpus_of_its_threads(store):
        found = {}
        for tid in store.threads():
            try:
                found[tid] = os.sched_getaffinity(tid)
            except ProcessLookupError:  # ended meanwhile
                pass
        return found

    with own_store(tmp_path, cpus={cpu}) as store:
        started_with = set(store.threads())
        with MongoClient(store.uri, maxPoolSize=4) as client:
            pings = [threading.Thread(target=client.admin.command, args=("ping",)) for _ in range(4)]
            for ping in pings:
                ping.start()
            for ping in pings:
                ping.join()
            pinned = cpus_of_its_threads(store)
            assert set(pinned) - started_with  # a thread for each new connection
            assert set(map(frozenset, pinned.values())) == {frozenset({cpu})}

        store.run_on(usable)
        assert set(map(frozenset, cpus_of_its_threads(store).values())) == {frozenset(usable)}


def test_the_bench_store_cpu_is_the_last_usable_one_unless_set_and_none_when_set_empty(monkeypatch):
    monkeypatch.delenv("BENCH_STORE_CPU", raising=False)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    assert store_cpu() == 3
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0})
    assert store_cpu() is None
    monkeypatch.setenv("BENCH_STORE_CPU", "0")
    assert store_cpu() == 0
    monkeypatch.setenv("BENCH_STORE_CPU", "")
    assert store_cpu() is None


def test_what_the_bench_store_spent_is_taken_over_the_timed_work_only(tmp_path):
    with own_store(tmp_path) as store, MongoClient(store.uri) as client:
        notes = client["timed"]["notes"]
        store.start_timing()
        time.sleep(0.3)
        idle = store.stop_timing(100)
        store.start_timing()
        for n in range(300):
            notes.insert_one({"n": n, "text": "已派单" * 20})
        working = store.stop_timing(100)
        assert working["cpu_ms_per_request"] > idle["cpu_ms_per_request"]
        assert working["context_switches_per_request"] > idle["context_switches_per_request"]


def test_a_thread_that_ends_while_timed_takes_none_of_the_other_threads_switches_with_it():
    # this process's own threads stand for the store's: real ones, not green
    real_threading, real_time = original("threading"), original("time")
    itself = BenchStore(SimpleNamespace(pid=os.getpid()), uri=None)
    may_end = real_threading.Event()

    def switches_then_waits():
        for _ in range(300):
            real_time.sleep(0.001)  # a context switch each
        may_end.wait()
    busy = real_threading.Thread(target=switches_then_waits)
    busy.start()
    while itself.context_switches().get(busy.native_id, 0) < 300:
        real_time.sleep(0.01)
    itself.start_timing()
    may_end.set()
    busy.join()
    assert itself.stop_timing(1)["context_switches_per_request"] >= 0


def logged(path, message, ends_line=True, **fields):
    """Appends a line as the services log it (one JSON object a line)."""
    line = json.dumps({"time": "2026-11-30 18:16:38,617", "level": "INFO", "logger": "x", "message": message, **fields}, ensure_ascii=False)
    with open(path, "a", encoding="utf-8") as log:
        log.write(line + ("\n" if ends_line else ""))


def send(channel, notifications, waited, claiming, sending, recording):
    return {"channel": channel, "notifications": notifications, "sent": notifications, "waited_seconds": waited, "claiming_seconds": claiming,
            "sending_seconds": sending, "recording_and_announcing_seconds": recording}


def test_a_fan_outs_breakdown_is_its_campaigns_round_and_the_notices_sent_since_it_began_as_the_services_logged_them(tmp_path):
    study_log, notify_logs = tmp_path / "study.log", [tmp_path / "notify-1.log", tmp_path / "notify-2.log"]
    round_of = lambda campaign, late: {"campaign_id": campaign, "taken_late_seconds": late, "publishing_seconds": 0.2, "round_seconds": 0.9}  # noqa: E731
    logged(study_log, "campaign round fanned out", **round_of("CP-earlier", 0.5))
    logged(notify_logs[0], "notifications sent", **send("outbox", 200, 9.0, 0.1, 0.5, 0.3))  # the earlier campaign's
    notify_lines = [LogLines(path) for path in notify_logs]
    with open(study_log, "a", encoding="utf-8") as log:
        log.write("a library's own print\n")
    logged(study_log, "campaign round fanned out", **round_of("CP-this", 0.7))
    logged(notify_logs[0], "notifications sent", **send("outbox", 200, 1.5, 0.05, 0.4, 0.2))
    assert [len(lines.new("notifications sent")) for lines in notify_lines] == [1, 0]  # as the bench polls while it waits
    logged(notify_logs[1], "notifications sent", **send("outbox", 150, 2.5, 0.02, 0.3, 0.6))
    logged(notify_logs[1], "request filed", tracking_no="YT-1")
    logged(notify_logs[1], "notifications sent", **send("sms", 1, 30.0, 1.0, 1.0, 1.0))  # not a group's notice
    logged(notify_logs[0], "notifications sent", ends_line=False, **send("outbox", 200, 4.0, 0.1, 0.1, 0.1))  # still being written

    breakdown = fan_out_breakdown(LogLines(study_log, from_start=True), notify_lines, "CP-this")

    assert breakdown["study_round"] == {"taken_late_seconds": 0.7, "publishing_seconds": 0.2, "round_seconds": 0.9}
    assert breakdown["notify_sends"] == {
        "sends": 2, "notifications": 350, "sent": 350, "most_waited_seconds": 2.5,
        "longest_claiming_seconds": 0.05, "longest_sending_seconds": 0.4, "longest_recording_and_announcing_seconds": 0.6,
        "total_claiming_seconds": 0.07, "total_sending_seconds": 0.7, "total_recording_and_announcing_seconds": 0.8}


class StallingStore:
    """Stands in for the probe's client: the second write waits until ``released``."""

    def __init__(self):
        self.writes, self.second_started, self.released = 0, threading.Event(), threading.Event()

    def __getitem__(self, name):
        return self

    def insert_one(self, document):
        self.writes += 1
        if self.writes == 2:
            self.second_started.set()
            self.second_write()

    def second_write(self):
        self.released.wait(timeout=30)

    def close(self):
        pass


def probed(store, seconds_after_the_second_write, then=lambda: None):
    """A probe's longest write over a use that ends this long after its second write began."""
    probe = StoreStalls(store, every=0.01)
    with probe:
        assert store.second_started.wait(timeout=10)
        time.sleep(seconds_after_the_second_write)
        then()
    return probe.longest


def test_the_store_stall_probe_counts_a_write_still_waiting_at_the_end_as_far_as_it_got():
    store = StallingStore()
    # the stall goes on after the end
    assert 0.3 <= probed(store, 0.3, then=lambda: threading.Timer(1.5, store.released.set).start()) < 1.5


def checkpoint_settings(data_directory):
    """The periodic checkpoint WiredTiger was opened with, as it recorded its settings."""
    return [line for line in (data_directory / "WiredTiger.basecfg").read_text().splitlines() if line.startswith("checkpoint=")]


def test_the_bench_store_takes_no_periodic_checkpoint_where_a_store_started_otherwise_does(tmp_path):
    with own_store(tmp_path / "bench"):
        assert checkpoint_settings(tmp_path / "bench" / "data") == []
    # the store as the platform and the tests start it
    process = start_store(free_port(), tmp_path / "plain" / "data", tmp_path / "plain" / "store.log")
    try:
        wait_until(lambda: (tmp_path / "plain" / "data" / "WiredTiger.basecfg").exists(), 30, "the store created its files", process=process)
        assert checkpoint_settings(tmp_path / "plain" / "data") != []
    finally:
        process.stop()


def test_a_round_taken_again_after_a_process_died_is_explained_by_its_last_line(tmp_path):
    study_log, notify_log = tmp_path / "study.log", tmp_path / "notify.log"
    notify_log.write_text("", encoding="utf-8")
    for late in (0.4, 31.0):  # the first process died before the round moved on
        logged(study_log, "campaign round fanned out", campaign_id="CP-1", taken_late_seconds=late, publishing_seconds=0.2, round_seconds=0.9)
    breakdown = fan_out_breakdown(LogLines(study_log, from_start=True), [LogLines(notify_log)], "CP-1")
    assert breakdown["study_round"]["taken_late_seconds"] == 31.0


class RefusingStore(StallingStore):
    """The probe's second write fails at once."""

    def second_write(self):
        raise ConnectionError("store gone")


def test_the_store_stall_probe_does_not_count_a_write_that_failed_as_waiting_to_the_end():
    assert probed(RefusingStore(), 0.5) < 0.5
