"""The bench's baselines time what they say: a run ends when every message has been
through every hop, not when the hops together have handled as many messages, and
baseline (c) replays the documents a command the pipeline's commands touched."""
import uuid

import pytest

from bench.hop import SameOperations
from bench.run import run_hops

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
