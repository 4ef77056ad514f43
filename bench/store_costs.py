"""``make store-costs``: what the pipeline's store commands cost the store itself, and why.

1. Runs intake, routing and notify on a fresh store with its profiler on and captures
   every command of ``STORE_COSTS_REQUESTS`` requests (the bench's requests, published
   at once), in the order the store finished them.
2. Replays them into fresh stores, one at a time and from 2, 4 and 16 connections at once,
   and reads the store process's CPU time and its threads' context switches, a request:
   on one CPU, as the benches run the store (``bench/store.py`` says why), and on every CPU.
3. Replays, one at a time, what baseline (c) would make of the same writes (its plan,
   counted from the store as in ``make bench``).
4. Times one case update by ``_id`` alone against the same update with one more
   condition, as the pipeline's conditional updates have, and as routing clears an outbox.

Writes ``bench/store_costs.json`` and a table. Measurements, not assertions: the figures
vary with the machine's load; run it on a quiet machine.
"""
import json
import os
from collections import Counter
import sys
import tempfile
import threading
import time
import uuid
from contextlib import ExitStack
from pathlib import Path

from bson import SON
from pymongo import MongoClient

from bench.hop import SameOperations
from bench.run import (Pipeline, StoreWrites, county_grid_ids, hop_plans, load_registry, log, machine_facts,
                       pipeline_throughput, service_settings, trust_local_identity)
from bench.store import own_store, pinned_cpus, store_cpu
from devstack.demo_county import build_county
from services.intake.storage import RequestStore
from services.notify.storage import NotificationStore
from services.routing.storage import RoutingStore
from tests.support.broker import throwaway_vhost
from tests.support.services import running_service

ROOT = Path(__file__).resolve().parent.parent
REQUESTS = int(os.environ.get("STORE_COSTS_REQUESTS", 150))
CONNECTIONS = (1, 2, 4, 16)
SERVICES = ("intake", "routing", "notify")
# what a driver adds to a command that a replay must not send again
DRIVER_FIELDS = {"lsid", "$db", "$clusterTime", "txnNumber", "$readPreference", "apiVersion"}
WRITES = {"insert", "update", "remove"}


def capture(scratch):
    """Every store command of the pipeline's services over one burst, oldest first."""
    county = build_county()
    databases = {name: f"capture_{name}" for name in SERVICES}
    outbox = scratch / "outbox.jsonl"
    with own_store(scratch / "capture", pinned_cpus()) as store, throwaway_vhost() as amqp_uri, ExitStack() as stack:
        mongo_uri = store.uri
        trust_local_identity(stack, scratch / "identity")
        settings = service_settings(outbox)
        pipeline = Pipeline(mongo_uri, databases, outbox)
        stack.enter_context(running_service("intake", amqp_uri=amqp_uri, mongo_uri=mongo_uri, log_dir=scratch,
                                            database=databases["intake"], extra_env=settings))
        load_registry(pipeline.client[databases["routing"]], county)
        for name in ("routing", "notify"):
            stack.enter_context(running_service(name, amqp_uri=amqp_uri, mongo_uri=mongo_uri, log_dir=scratch,
                                                database=databases[name], extra_env=settings))
        time.sleep(2)  # past their start-up work
        for database in databases.values():
            pipeline.client[database].command("profile", 2)
        pipeline_throughput(amqp_uri, pipeline, county_grid_ids(county), count=REQUESTS)
        commands = []
        for database in databases.values():
            pipeline.client[database].command("profile", 0)
            commands += pipeline.client[database]["system.profile"].find({}, {"ns": 1, "op": 1, "command": 1, "ts": 1})
    inserted = sum(1 for entry in commands if entry["ns"] == "capture_intake.requests" and entry["op"] == "insert")
    if inserted != REQUESTS:
        # the store keeps a database's profile in a capped collection: the oldest go first
        raise RuntimeError(f"the profile kept {inserted} of {REQUESTS} requests' inserts: capture fewer requests")
    return sorted(commands, key=lambda entry: entry["ts"])


def prepared(client):
    """The services' collections and indexes, empty, under the captured databases' names."""
    RequestStore(client["capture_intake"]).ensure_indexes()
    RoutingStore(client["capture_routing"]).ensure_indexes({"REGISTRY": {"AREA_INDEX": False}})
    NotificationStore(client["capture_notify"]).ensure_indexes()
    return client


def run(client, entry):
    """Send one captured command again; the store's reply."""
    return client[entry["ns"].partition(".")[0]].command(SON((k, v) for k, v in entry["command"].items() if k not in DRIVER_FIELDS))


def replay(scratch, commands, connections, cpus=None):
    """The captured commands sent from ``connections`` connections at once, each taking
    every n-th command in order, to a store on ``cpus`` (every CPU if ``None``): what the
    store spent a request (CPU, context switches), the seconds it took, and the updates
    that found nothing to update. Sent out of their order across connections, an update
    may come before the insert it updates and cost less: the CPU from several
    connections is then an underestimate."""
    with own_store(scratch / f"replay-{connections}-{uuid.uuid4().hex[:6]}", cpus) as store:
        client = prepared(MongoClient(store.uri, tz_aware=True, maxPoolSize=connections))
        found_nothing, failures = [], []

        def send(share):
            try:
                found_nothing.append(sum(1 for entry in share if run(client, entry).get("n") == 0 and entry["op"] == "update"))
            except Exception as error:  # noqa: BLE001 - re-raised below, once every sender is done
                failures.append(error)

        store.start_timing()
        started = time.monotonic()
        senders = [threading.Thread(target=send, args=(commands[n::connections],)) for n in range(connections)]
        for sender in senders:
            sender.start()
        for sender in senders:
            sender.join()
        seconds, spent = time.monotonic() - started, store.stop_timing(REQUESTS)
        if failures:
            raise failures[0]
        return spent, seconds, sum(found_nothing)


def baseline_c_imitation(scratch, commands):
    """Store CPU a request, one command at a time: the captured writes, then what baseline
    (c) replays of them (its plan counted from the store as ``make bench`` does)."""
    with own_store(scratch / "imitation", pinned_cpus()) as store:
        client = prepared(MongoClient(store.uri, tz_aware=True))
        counted = StoreWrites(client)
        before = store.cpu_seconds()
        for entry in commands:
            if entry["op"] in WRITES:
                run(client, entry)
        writes = (store.cpu_seconds() - before) * 1000 / REQUESTS
        operations = counted.per_request({f"capture_{name}": name for name in SERVICES}, REQUESTS)
        imitation = 0.0
        for plan in hop_plans(client, operations):
            hop = SameOperations(client[f"imitation_{uuid.uuid4().hex[:6]}"], plan)
            hop.prepare(REQUESTS)
            before = store.cpu_seconds()
            for n in range(REQUESTS):
                hop({"n": n})
            imitation += (store.cpu_seconds() - before) * 1000 / REQUESTS
        return writes, imitation


def conditional_updates(scratch, rounds=6, per_round=60):
    """Store CPU (ms) of one case update, the outbox cleared, by ``_id`` alone, with one
    condition more, and as routing clears it (by ``_id``, an update pipeline keeping what
    was not published), taken in turns."""
    cleared = {"$set": {"outbox": [], "outbox_pending_since": None}}
    with own_store(scratch / "conditions", pinned_cpus()) as store:
        database = prepared(MongoClient(store.uri, tz_aware=True))["capture_routing"]
        cases, routing = database["cases"], RoutingStore(database)
        updates = {
            "by _id alone": lambda case: cases.update_one({"_id": case["_id"]}, cleared),
            "and a plain field (version)": lambda case: cases.update_one({"_id": case["_id"], "version": case["version"]}, cleared),
            "and the outbox holds only what went out": lambda case: cases.update_one(
                {"_id": case["_id"], "outbox": {"$not": {"$elemMatch": {"event_id": {"$nin": ["e1"]}}}}}, cleared),
            "by _id, keeping what was not published (routing's)": lambda case: routing.clear_outbox(case["_id"], ["e1"]),
        }

        def case():
            return {"_id": uuid.uuid4().hex, "tracking_no": uuid.uuid4().hex, "request_ids": [uuid.uuid4().hex], "version": 1,
                    "status": "assigned", "grid_id": "g1", "text": "南湖花园二区的路灯坏了" * 8, "assignee": {"id": "w1"},
                    "timeline": [{"to": "assigned", "note": "已派单"}] * 3, "outbox": [{"event_id": "e1", "event": "x" * 300}],
                    "outbox_pending_since": time.time()}
        cases.insert_many([case() for _ in range(2000)])
        spent = {name: 0.0 for name in updates}
        for _ in range(rounds):
            for name, update in updates.items():
                batch = [case() for _ in range(per_round)]
                cases.insert_many(batch)
                before = store.cpu_seconds()
                for one in batch:
                    update(one)
                spent[name] += store.cpu_seconds() - before
                if cases.count_documents({"_id": {"$in": [one["_id"] for one in batch]}, "outbox": {"$size": 0}}) != len(batch):
                    raise RuntimeError(f"the update {name} left an outbox as it was")
        return {name: round(seconds * 1000 / (rounds * per_round), 2) for name, seconds in spent.items()}


def main():
    results = {"machine": machine_facts(), "requests": REQUESTS}
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        log(f"capturing the pipeline's store commands over {REQUESTS} requests")
        commands = capture(scratch)
        kinds = Counter(f"{entry['ns'].partition('.')[2]} {entry['op']}" for entry in commands)
        results["commands"] = {"total": len(commands), "per_request": round(len(commands) / REQUESTS, 2),
                               "by_collection_and_kind": dict(kinds.most_common())}
        results["store_cpu"] = store_cpu()
        results["replayed"] = {"store_on_one_cpu": {}, "store_on_every_cpu": {}}
        for connections in CONNECTIONS:
            # one CPU and every CPU in turn, so that a change in the machine's load weighs on both
            for where, cpus in (("store_on_one_cpu", pinned_cpus()), ("store_on_every_cpu", None)):
                if where == "store_on_one_cpu" and cpus is None:
                    continue
                log(f"replaying them from {connections} connection(s) at once, {where.replace('_', ' ')}")
                spent, seconds, found_nothing = replay(scratch, commands, connections, cpus)
                results["replayed"][where][f"{connections}_connections"] = {
                    "store_cpu_ms_per_request": spent["cpu_ms_per_request"], "context_switches_per_request": spent["context_switches_per_request"],
                    "seconds": round(seconds, 1), "updates_that_found_nothing": found_nothing}
        log("their writes one at a time, and baseline (c)'s imitation of them")
        writes, imitation = baseline_c_imitation(scratch, commands)
        results["writes_one_at_a_time_store_cpu_ms_per_request"] = round(writes, 1)
        results["baseline_c_imitation_store_cpu_ms_per_request"] = round(imitation, 1)
        log("one case update with and without a further condition")
        results["case_update_store_cpu_ms"] = conditional_updates(scratch)
    (ROOT / "bench" / "store_costs.json").write_text(json.dumps(results, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print(json.dumps({key: value for key, value in results.items() if key != "machine"}, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    sys.exit(main())
