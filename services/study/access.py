"""Who may record taking part (check-ins, sessions, attendance) for whom. The grid
registry says who belongs where; study reads it from routing, as it reads grids.

* ``study_editor``, ``county_admin``: every grid;
* ``grid_worker``, ``grid_head``: members and sessions of the grids they work in or
  head (the grid's own record names its head and workers);
* ``community_lead``, ``town_lead``: none for now. Routing's grid directory does not
  say who heads a community or a town, so study cannot tell their grids, and does
  not guess.
"""
from wangge.auth import Forbidden

EVERYWHERE_ROLES = frozenset({"study_editor", "county_admin"})
GRID_ROLES = frozenset({"grid_worker", "grid_head"})


class OutsideYourGrids(Forbidden):
    def __init__(self, grid_ids):
        super().__init__(f"You may record taking part only for members and sessions of your own grids, not of {', '.join(grid_ids)}.",
                         {"grid_id": [f"{grid_id} is not a grid you work in or head." for grid_id in grid_ids]})
        self.details = {"grid_ids": list(grid_ids)}


def works_in(caller, grid):
    """Whether ``caller`` works in or heads ``grid`` (a grid record; ``None``: no such grid)."""
    if grid is None or not caller.has_any(GRID_ROLES):
        return False
    return (grid.get("head") or {}).get("id") == caller.subject or any(
        worker.get("id") == caller.subject for worker in grid.get("workers") or [])


def require_grids(caller, directory, grid_ids):
    """Nothing, or ``OutsideYourGrids`` naming each of ``grid_ids`` the caller may not record for."""
    if caller.has_any(EVERYWHERE_ROLES):
        return
    outside = sorted(grid_id for grid_id in set(grid_ids) if not works_in(caller, directory.grid(grid_id)))
    if outside:
        raise OutsideYourGrids(outside)
