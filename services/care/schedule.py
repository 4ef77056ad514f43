"""When a priority resident is to be visited, and who hears when a visit is late.

Each kind of resident has a visit interval (``VISITS.INTERVAL_DAYS``); someone of
several kinds is visited as often as the most frequent asks. Every visit starts
the next interval: a resident is *due* once their last visit (or their
registration, before any) is one interval old, and *overdue* after that.

Each due time is kept as a document of its own, so that a report can tell the
visits that fell due in a period from those made by their due time. Each due time
has two notices: the responsible worker's when it falls due, the grid head's
``HEAD_GRACE_DAYS`` later if the visit is still not made. Notice ids come from
(resident, due time, stage), so however many processes publish them, each
exists once.
"""
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

KIND_NAMES = {
    "living_alone": "独居老人",
    "empty_nest": "空巢老人",
    "left_behind_child": "留守儿童",
    "disabled": "残疾人",
    "subsistence": "低保/特困",
    "seriously_ill": "重病",
}
KINDS = tuple(KIND_NAMES)
WORKER, GRID_HEAD = "worker", "grid_head"
STAGES = (WORKER, GRID_HEAD)


@dataclass(frozen=True)
class VisitPolicy:
    """The county's clock, the interval per kind and the grid head's grace (``VISITS`` in config.yml)."""

    zone: ZoneInfo
    interval_days: dict
    head_grace_days: float

    @classmethod
    def from_config(cls, settings):
        intervals = {kind: float(days) for kind, days in settings["INTERVAL_DAYS"].items()}
        missing = sorted(set(KINDS) - set(intervals))
        if missing:
            raise ValueError(f"VISITS.INTERVAL_DAYS names no interval for {', '.join(missing)}")
        if any(days <= 0 for days in intervals.values()):
            raise ValueError("VISITS.INTERVAL_DAYS must all be positive")
        return cls(ZoneInfo(settings["TIMEZONE"]), intervals, float(settings["HEAD_GRACE_DAYS"]))

    def interval(self, kinds):
        return timedelta(days=min(self.interval_days[kind] for kind in kinds))

    def next_due(self, kinds, last_visited_at):
        return last_visited_at + self.interval(kinds)

    @property
    def head_grace(self):
        return timedelta(days=self.head_grace_days)

    def period(self, first_day, last_day):
        """``[start, end)`` in UTC of the county's days ``first_day`` to ``last_day``, both included."""
        start = datetime.combine(first_day, time(0), tzinfo=self.zone)
        end = datetime.combine(last_day + timedelta(days=1), time(0), tzinfo=self.zone)
        return start, end


def due_id(resident_id, due_at):
    return f"{resident_id}|{due_at.isoformat()}"


def due_document(resident, due_at):
    """One due time of one resident, open until a visit closes it."""
    return {
        "_id": due_id(resident["_id"], due_at), "resident_id": resident["_id"], "grid_id": resident["grid_id"],
        "community_id": resident.get("community_id"), "town_id": resident.get("town_id"),
        "due_at": due_at, "done_at": None, "visit_id": None,
    }


def notices(resident, due_at, policy):
    """The two notices of a due time: the worker's at it, the grid head's after the grace period."""
    return [
        {"_id": f"{due_id(resident['_id'], due_at)}|{stage}", "resident_id": resident["_id"], "due_at": due_at,
         "stage": stage, "notify_at": due_at if stage == WORKER else due_at + policy.head_grace,
         "state": "pending", "claim": None, "claimed_until": None, "published_at": None}
        for stage in STAGES
    ]


def is_overdue(resident, now):
    return resident.get("next_visit_due") is not None and resident["next_visit_due"] < now


def days_overdue(resident, now):
    """Whole days past the due time (0 on the day it fell due)."""
    return max(0, (now - resident["next_visit_due"]).days) if is_overdue(resident, now) else 0


def on_time(due):
    return due.get("done_at") is not None and due["done_at"] <= due["due_at"]


def responsible_worker(grid, residents_per_worker):
    """The grid's worker who looks after a new resident: on duty, with the fewest priority
    residents so far (the registry's order breaks ties); ``None`` for a grid without workers."""
    workers = grid.get("workers") or []
    on_duty = [worker for worker in workers if worker.get("on_duty", True)] or workers
    if not on_duty:
        return None
    return min(on_duty, key=lambda worker: residents_per_worker.get(worker["id"], 0))["id"]


def person(record):
    """A worker or head as a notice names them: id and name, never the phone the registry masks for services."""
    if not record or not record.get("id"):
        return None
    return {"id": record["id"], "name": record.get("name")}


def notice_recipients(grid, worker_id):
    """(worker, grid head) of a grid record for a resident's notice: their own worker while
    still in the grid, else the grid's first worker on duty; the head as the registry says."""
    workers = (grid or {}).get("workers") or []
    worker = next((w for w in workers if w.get("id") == worker_id), None)
    if worker is None:
        worker = next((w for w in workers if w.get("on_duty", True)), None)
    return person(worker), person((grid or {}).get("head"))
