"""Who takes a new case: the on-duty grid worker with the fewest open cases,
else the grid head (网格长)."""


def choose_assignee(grid, open_cases_of):
    """The grid's on-duty worker with the fewest open cases, else its head.
    ``open_cases_of(worker_ids)`` gives their open cases by id; it is asked only when
    there is a choice to make (a store read a worker)."""
    on_duty = [worker for worker in grid.get("workers", []) if worker.get("on_duty", True)]
    if not on_duty:
        return {**person(grid["head"]), "role": "grid_head"}
    open_cases = open_cases_of([worker["id"] for worker in on_duty]) if len(on_duty) > 1 else {}
    # Ties go to the worker listed first, so the choice is repeatable.
    chosen = min(on_duty, key=lambda worker: open_cases.get(worker["id"], 0))
    return {**person(chosen), "role": "worker"}


def person(record):
    return {key: record.get(key) for key in ("id", "name", "phone", "email") if record.get(key) is not None}
