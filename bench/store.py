"""The benches' own store: a fresh SecantusDB each time, the CPUs it runs on, and what it spends.

SecantusDB is one Python process: its connections' threads take turns at the interpreter
lock, and every time a thread gives the lock up (a socket read, a call into its storage
engine) a waiting thread is woken. On several CPUs that wake-up is a context switch on
another CPU; with a handful of connections busy at once it happens ~1,000 times a request
and the store spends as much CPU on switching as on the commands (``make store-costs``
measures both ways). Pinned to one CPU it does not: the benches pin it, for every
baseline and the pipeline alike. (Pinned, not isolated: the broker, the services and the
hops may still run on that CPU too.)
"""
import os
from contextlib import contextmanager
from pathlib import Path

from bench.cpu import cpu_seconds
from devstack.processes import start_store, store_answers, wait_until
from tests.support.ports import free_port


# SecantusDB checkpoints every 60 s by default. Under sync-on-commit, once a bench's data is in it,
# a checkpoint can make every command wait 10-20 s at once (its profiler: commands of every service
# starting within milliseconds and ending together, none of them the cause), which lands on
# whatever figure is being timed. MongoDB's checkpoints do not stall commits so; a bench's store
# lives minutes, so its journal need not be trimmed.
NO_PERIODIC_CHECKPOINT = {"SECANTUS_CHECKPOINT_SECONDS": "0"}


def store_cpu():
    """The CPU the benches give the store: ``BENCH_STORE_CPU``, or the last CPU they may
    use; ``None`` (not pinned) on a machine of one CPU or when ``BENCH_STORE_CPU`` is empty."""
    chosen = os.environ.get("BENCH_STORE_CPU")
    if chosen is not None:
        return int(chosen) if chosen.strip() else None
    usable = os.sched_getaffinity(0)
    return max(usable) if len(usable) > 1 else None


def pinned_cpus():
    """:func:`store_cpu` as the set of CPUs to pin the store to; ``None`` if it is not pinned."""
    cpu = store_cpu()
    return None if cpu is None else {cpu}


class BenchStore:
    """A store process a bench started: its URI, the CPUs its threads run on, and what it
    spent over a timed run (``last_run``)."""

    def __init__(self, process, uri):
        self.process = process
        self.uri = uri
        self._timed_from = None
        self.last_run = None

    def usage(self):
        """What the store has spent so far: its CPU time and each live thread's context switches."""
        return self.cpu_seconds(), self.context_switches()

    @property
    def pid(self):
        return self.process.pid

    def threads(self):
        return [int(tid) for tid in os.listdir(f"/proc/{self.pid}/task")]

    def run_on(self, cpus):
        """Every thread of the store on ``cpus``; threads it starts later (one a new
        connection) inherit the CPUs of the thread that starts them. Again until none is
        left elsewhere: a connection accepted while the threads were being moved may have
        started one from the accepting thread before it moved."""
        cpus = set(cpus)
        while True:
            moved = 0
            for tid in self.threads():
                try:
                    if os.sched_getaffinity(tid) != cpus:
                        os.sched_setaffinity(tid, cpus)
                        moved += 1
                except ProcessLookupError:  # a connection's thread that ended meanwhile
                    pass
            if not moved:
                return

    def cpu_seconds(self):
        """User and system CPU time of the store so far."""
        return cpu_seconds(self.pid)

    def context_switches(self):
        """Each live thread's context switches so far, by thread id."""
        counts = {}
        for tid in self.threads():
            try:
                lines = Path(f"/proc/{self.pid}/task/{tid}/status").read_text().splitlines()
            except FileNotFoundError:
                continue
            counts[tid] = sum(int(line.split()[1]) for line in lines if "ctxt_switches" in line)
        return counts

    def start_timing(self):
        self._timed_from = self.usage()

    def stop_timing(self, requests, until=None):
        """What the store spent a request from :meth:`start_timing` to now (or to the
        :meth:`usage` ``until``), kept as ``last_run``. Context switches are those of the
        threads alive at both ends (a thread that ended took its count with it): at least
        that many."""
        (cpu_from, switches_from), (cpu_to, switches_to) = self._timed_from, until or self.usage()
        switches = sum(count - switches_from.get(tid, 0) for tid, count in switches_to.items())
        self.last_run = {"cpu_ms_per_request": round((cpu_to - cpu_from) * 1000 / requests, 1),
                         "context_switches_per_request": round(switches / requests)}
        return self.last_run


@contextmanager
def own_store(directory, cpus=None):
    """A fresh SecantusDB on a free port, on ``cpus`` if given (see the module's note)."""
    port = free_port()
    process = start_store(port, Path(directory) / "data", Path(directory) / "store.log", env=NO_PERIODIC_CHECKPOINT)
    store = BenchStore(process, f"mongodb://127.0.0.1:{port}/?retryWrites=false")
    try:
        wait_until(lambda: store_answers(store.uri), 30, "the store answered", process=process)
        if cpus is not None:
            store.run_on(cpus)
        yield store
    finally:
        process.stop()
