"""Who takes a new case: the on-duty grid worker with the fewest open cases,
else the grid head (网格长)."""


def choose_assignee(grid, open_cases_by_worker):
    on_duty = [worker for worker in grid.get("workers", []) if worker.get("on_duty", True)]
    if on_duty:
        # Ties go to the worker listed first, so the choice is repeatable.
        chosen = min(on_duty, key=lambda worker: open_cases_by_worker.get(worker["id"], 0))
        return {**person(chosen), "role": "worker"}
    return {**person(grid["head"]), "role": "grid_head"}


def person(record):
    return {key: record.get(key) for key in ("id", "name", "phone", "email") if record.get(key) is not None}
