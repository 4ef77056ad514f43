"""The bench's baselines time what they say: a run ends when every message has been
through every hop, not when the hops together have handled as many messages, and
baseline (c) replays the documents a command the pipeline's commands touched. The
pipeline's runs are timed like the baselines', without reading the store they measure,
and compared with baseline (c)'s in pairs of runs made one after the other."""
import json
import uuid

import pytest

from bench import run as bench
from bench.hop import SameOperations
from bench.run import Pipeline, alternating, pipeline_throughput, run_hops

pytestmark = pytest.mark.e2e


def test_a_run_of_three_hops_ends_when_the_last_hop_has_every_message(amqp_uri, mongo_uri, scratch_database):
    tag = uuid.uuid4().hex[:6]
    queues = [f"bench.test{n}.{tag}" for n in range(3)]

    run_hops(amqp_uri, mongo_uri, scratch_database.name, queues, ["1", "1", "1"], messages=60)

    # each hop writes one document a message; the last one's goes to "done"
    assert scratch_database["done"].count_documents({}) == 60
    assert sorted(scratch_database["done"].distinct("message")) == list(range(60))


def test_baseline_c_touches_as_many_documents_a_command_as_the_pipeline_did_on_average(scratch_database):
    plan = {"operations": [{"collection": "notes", "kind": "insert", "commands": 1.0, "docs_per_command": 1.5}],
            "collections": {"notes": {"indexes": [], "sample": {"text": "已派单"}, "unique": []}}}
    replay = SameOperations(scratch_database, plan)
    replay.prepare(seeded=0)
    for n in range(4):
        replay({"n": n})
    assert scratch_database["notes"].count_documents({}) == 6  # 1, 2, 1, 2


class StoreNotToBeRead:
    def __getattr__(self, name):
        raise AssertionError(f"the timed run read the store ({name})")


def test_a_timed_pipeline_run_ends_on_this_runs_worker_notices_in_notify_outbox_and_never_reads_the_store(tmp_path, mongo_uri, monkeypatch):
    outbox = tmp_path / "outbox.jsonl"
    worker_notice, resident_notice = (json.dumps({"kind": kind}) + "\n" for kind in ("case_assigned.worker", "request_received.resident"))
    outbox.write_text(worker_notice, encoding="utf-8")  # of an earlier run
    pipeline = Pipeline(mongo_uri, {"intake": "unused", "routing": "unused", "notify": "unused"}, outbox)
    pipeline.notifications = pipeline.intake = pipeline.cases = StoreNotToBeRead()

    def notify_sends_all_but_the_last_workers_notice(amqp_uri, grid_ids, count, tag, rate=None):
        with open(outbox, "a", encoding="utf-8") as lines:
            lines.write((resident_notice + worker_notice) * (count - 1) + resident_notice)

    finished = []

    def checked_before_and_after_the_last_notice(check, timeout, interval=0.05):
        finished.append(check())
        with open(outbox, "a", encoding="utf-8") as lines:
            lines.write(worker_notice)
        finished.append(check())

    monkeypatch.setattr(bench, "publish_burst", notify_sends_all_but_the_last_workers_notice)
    monkeypatch.setattr(bench, "wait_for", checked_before_and_after_the_last_notice)

    pipeline_throughput("amqp://unused", pipeline, ["g1"], count=5)

    assert finished == [False, True]


def test_figures_to_compare_are_taken_in_turn_run_after_run():
    taken = []
    same, beside = alternating(3, lambda: taken.append("baseline") or len(taken), lambda: taken.append("pipeline") or len(taken), settle=0)

    assert taken == ["baseline", "pipeline"] * 3
    assert (same, beside) == ([1, 3, 5], [2, 4, 6])
