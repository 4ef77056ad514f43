"""CPU time of the processes a timed run is made of: the store, the broker, and the bare
hops of a baseline or the pipeline's services. On a machine of few CPUs a run's rate is
bounded by their sum as well as by the store's share (``make bench`` records both)."""
import os
import subprocess
from pathlib import Path


def cpu_seconds(pid):
    """User and system CPU time of process ``pid`` so far, all its threads."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def broker_pid():
    """The local RabbitMQ node: the oldest Erlang VM running RabbitMQ, as the machine's broker
    started before the bench and any node of a test's own; ``None`` where the broker runs
    elsewhere. Its CPU is all of its vhosts': the bench's figure assumes nothing else uses it."""
    found = subprocess.run(["pgrep", "-o", "-f", "beam.smp.*rabbit"], capture_output=True, text=True).stdout.split()
    return int(found[0]) if found else None


class CpuMeter:
    """The CPU a request that each role's processes spent over a timed run (``last_run``):
    ``fixed`` roles outlive the runs (``{"store": pid, "broker": pid}``; a ``None`` pid is
    left out), the others are named when a run starts (a baseline's hops are its own)."""

    def __init__(self, fixed):
        self.fixed = {role: [pid] for role, pid in fixed.items() if pid}
        self.last_run = None
        self._pids = self._from = None

    def start(self, pids_by_role):
        self._pids = {**self.fixed, **pids_by_role}
        self._from = self._spent()

    def reading(self):
        """Each role's CPU seconds so far: a run may end at an earlier reading than :meth:`stop`'s."""
        return self._spent()

    def stop(self, requests, until=None):
        """The CPU a request of each role from :meth:`start` to now, or to the :meth:`reading` ``until``."""
        spent = until or self._spent()
        per_request = {role: round((spent[role] - self._from[role]) * 1000 / requests, 1) for role in spent}
        self.last_run = {**per_request, "total": round(sum(per_request.values()), 1)}
        return self.last_run

    def _spent(self):
        spent = {}
        for role, pids in self._pids.items():
            try:
                spent[role] = sum(cpu_seconds(pid) for pid in pids)
            except FileNotFoundError:
                raise RuntimeError(f"a process of role {role!r} ended during a timed run") from None
        return spent
