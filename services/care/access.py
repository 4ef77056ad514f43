"""Who may read and record what in care. The grid registry says who belongs where;
care reads it from routing, as study does.

* Priority residents and their visits (the most sensitive records of the platform):
  in full to the grid's workers and head, the community and town lead over the grid,
  and the command centre (``county_center``, ``county_admin``); each such read is
  audit-logged by the service. Departments read them masked: the family name, the
  phone's ends, no address or notes. Anyone else, another grid's worker included, 403.
* Recording residents, visits and grid volunteer activities: the same people but
  departments, for their own grids.
* Volunteer activities of a whole community, and the public to-do list: the
  community's or town's lead, and the command centre.
"""
from wangge.auth import Forbidden
from wangge.grid_directory import GRID_ROLES, LEAD_HEADS

COUNTY_ROLES = ("county_admin", "county_center")
MASKED_ROLES = frozenset({"department"})
MASKED = None


class OutsideYourArea(Forbidden):
    def __init__(self, field, value, message):
        super().__init__(message, {field: [f"{value} is not in your area."]})


def county_role(caller):
    return next((role for role in COUNTY_ROLES if role in caller.roles), None)


def role_in_grid(caller, grid):
    """The role in which ``caller`` serves ``grid`` (a grid record): grid_head, grid_worker,
    community_lead or town_lead; ``None`` if they do not."""
    if grid is None:
        return None
    if "grid_head" in caller.roles and (grid.get("head") or {}).get("id") == caller.subject:
        return "grid_head"
    if caller.has_any(GRID_ROLES) and any(worker.get("id") == caller.subject for worker in grid.get("workers") or []):
        return "grid_worker"
    return lead_role(caller, grid)


def lead_role(caller, grid, levels=("community_lead", "town_lead")):
    """The lead role in which ``caller`` heads the community or town of ``grid``, or ``None``."""
    return next((role for role in levels if role in caller.roles and (grid.get(LEAD_HEADS[role]) or {}).get("id") == caller.subject), None)


def resident_reader(caller, grid, grid_id):
    """Why ``caller`` reads the residents of a grid in full (their role, for the audit
    log), ``MASKED`` for a department, or ``OutsideYourArea``."""
    role = county_role(caller) or role_in_grid(caller, grid)
    if role:
        return role
    if caller.has_any(MASKED_ROLES):
        return MASKED
    raise OutsideYourArea("grid_id", grid_id, "Priority residents are read only by their grid's workers and head, its leads and the county.")


def require_recorder(caller, grid, grid_id):
    """The role in which ``caller`` records for the grid, or ``OutsideYourArea``."""
    role = county_role(caller) or role_in_grid(caller, grid)
    if role:
        return role
    raise OutsideYourArea("grid_id", grid_id, "You record only for the grids you work in, head or lead.")


def require_area_lead(caller, grid, level, field, area_id):
    """The role in which ``caller`` acts for a whole community or town (``grid``: one of
    its grids): its lead (a town's lead for its communities too) or the county."""
    levels = ("town_lead",) if level == "town" else ("community_lead", "town_lead")
    role = county_role(caller) or (lead_role(caller, grid, levels) if grid else None)
    if role:
        return role
    raise OutsideYourArea(field, area_id, f"Only the {level}'s lead and the county act for a whole {level}.")
