"""The benches' own store: a fresh SecantusDB each time, the CPUs it runs on, and what it spends.

SecantusDB is one Python process: its connections' threads take turns at the interpreter
lock, and every time a thread gives the lock up (a socket read, a call into its storage
engine) a waiting thread is woken. On several CPUs that wake-up is a context switch on
another CPU; with a handful of connections busy at once it happens ~1,000 times a request
and the store spends as much CPU on switching as on the commands (``make store-costs``
measures both ways). On one CPU of its own, as on a host of its own, it does not: the
benches run it there, every baseline and the pipeline alike.
"""
import os
from contextlib import contextmanager
from pathlib import Path

from devstack.processes import start_store, store_answers, wait_until
from tests.support.ports import free_port


def store_cpu():
    """The CPU the benches give the store: ``BENCH_STORE_CPU``, or the last CPU they may
    use; ``None`` (not pinned) on a machine of one CPU or when ``BENCH_STORE_CPU`` is empty."""
    chosen = os.environ.get("BENCH_STORE_CPU")
    if chosen is not None:
        return int(chosen) if chosen.strip() else None
    usable = os.sched_getaffinity(0)
    return max(usable) if len(usable) > 1 else None


class BenchStore:
    def __init__(self, process, uri):
        self.process = process
        self.uri = uri
        self._timed_from = None
        self.last_run = None

    @property
    def pid(self):
        return self.process.pid

    def threads(self):
        return [int(tid) for tid in os.listdir(f"/proc/{self.pid}/task")]

    def run_on(self, cpus):
        """Every thread of the store on ``cpus``; threads it starts later (one a new
        connection) inherit the CPUs of the thread that starts them."""
        for tid in self.threads():
            try:
                os.sched_setaffinity(tid, cpus)
            except ProcessLookupError:  # a connection's thread that ended meanwhile
                pass

    def cpu_seconds(self):
        """User and system CPU time of the store so far."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def context_switches(self):
        """Context switches of the store's threads alive now (a thread's count goes with it)."""
        total = 0
        for tid in self.threads():
            try:
                lines = Path(f"/proc/{self.pid}/task/{tid}/status").read_text().splitlines()
            except FileNotFoundError:
                continue
            total += sum(int(line.split()[1]) for line in lines if "ctxt_switches" in line)
        return total

    def start_timing(self):
        self._timed_from = (self.cpu_seconds(), self.context_switches())

    def stop_timing(self, requests):
        """What the store spent a request since :meth:`start_timing`, kept as ``last_run``."""
        cpu, switches = self._timed_from
        self.last_run = {"cpu_ms_per_request": round((self.cpu_seconds() - cpu) * 1000 / requests, 1),
                         "context_switches_per_request": round((self.context_switches() - switches) / requests)}
        return self.last_run


@contextmanager
def own_store(directory, cpus=None):
    """A fresh SecantusDB on a free port, on ``cpus`` if given (see the module's note)."""
    port = free_port()
    process = start_store(port, Path(directory) / "data", Path(directory) / "store.log")
    store = BenchStore(process, f"mongodb://127.0.0.1:{port}/?retryWrites=false")
    try:
        wait_until(lambda: store_answers(store.uri), 30, "the store answered", process=process)
        if cpus is not None:
            store.run_on(cpus)
        yield store
    finally:
        process.stop()
