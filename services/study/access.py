"""Who may record taking part (check-ins, sessions, attendance) for whom, and see who
of a grid's members took part and who has not. The grid registry says who belongs
where; study reads it from routing, as it reads grids.

* ``study_editor``, ``county_admin``: every grid;
* ``grid_worker``, ``grid_head``: members and sessions of the grids they work in or
  head (the grid's own record names its head and workers);
* ``community_lead``, ``town_lead``: the grids of the community or town they head
  (the grid's record names those heads too).
"""
from wangge.auth import Forbidden
from wangge.grid_directory import serves_grid

EVERYWHERE_ROLES = frozenset({"study_editor", "county_admin"})


class OutsideYourGrids(Forbidden):
    def __init__(self, grid_ids):
        super().__init__(f"You may record or see taking part only for members and sessions of your own grids, not of {', '.join(grid_ids)}.",
                         {"grid_id": [f"{grid_id} is not a grid you work in, head or lead." for grid_id in grid_ids]})
        self.details = {"grid_ids": list(grid_ids)}


def require_grids(caller, directory, grid_ids):
    """Nothing, or ``OutsideYourGrids`` naming each of ``grid_ids`` the caller may not record or see."""
    if caller.has_any(EVERYWHERE_ROLES):
        return
    outside = sorted(grid_id for grid_id in set(grid_ids) if not serves_grid(caller, directory.grid(grid_id)))
    if outside:
        raise OutsideYourGrids(outside)
