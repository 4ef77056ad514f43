"""Which cases a person may see and act on: their role (from the identity
provider) and their area (from the grid registry, the source of truth for who
belongs where).

* ``grid_worker``, ``grid_head``: cases of the grids they work in or head;
* ``community_lead``, ``town_lead``: cases of the community or town they head;
* ``department``: cases escalated to the department they are the contact of;
* ``county_center``, ``county_admin``: every case (the command centre triages and
  re-dispatches; the administrator may do what any staff role may).

Dispatching (派遣/改派) is the command centre's everywhere and a town lead's in their
town's queue (:func:`require_dispatcher_of`).

The resident's name and phone are for the person a case is assigned to and
their leads only (:func:`reporter_reader`).
"""
from dataclasses import dataclass, field

from wangge.auth import Forbidden

from services.routing.dispatch import in_queue_of

EVERYWHERE_ROLES = frozenset({"county_center", "county_admin"})
DISPATCH_ROLES = EVERYWHERE_ROLES
# The leads of a case's assignee: they may call the resident too.
LEAD_ROLES = frozenset({"grid_head", "community_lead", "town_lead", *EVERYWHERE_ROLES})


@dataclass(frozen=True)
class Area:
    everywhere: bool = False
    grid_ids: frozenset = field(default_factory=frozenset)
    community_ids: frozenset = field(default_factory=frozenset)
    town_ids: frozenset = field(default_factory=frozenset)
    department_ids: frozenset = field(default_factory=frozenset)
    headed_grid_ids: frozenset = field(default_factory=frozenset)

    def covers(self, case):
        return self.everywhere or self.role_for(case) is not None

    def role_for(self, case):
        """The role of the grids, community, town or department through which
        this area reaches ``case``, or ``None``."""
        department = (case.get("department") or {}).get("id")
        # the widest reach first: a lead who also works in the grid acts as the lead
        if case.get("town_id") in self.town_ids:
            return "town_lead"
        if case.get("community_id") in self.community_ids:
            return "community_lead"
        if case.get("grid_id") in self.headed_grid_ids:
            return "grid_head"
        if case.get("grid_id") in self.grid_ids:
            return "grid_worker"
        if case.get("level") == "department" and department in self.department_ids:
            return "department"
        return None

    def leads(self, grid):
        """Whether this area heads ``grid`` or leads the community or town it is in."""
        return self.everywhere or grid["id"] in self.headed_grid_ids or grid["community_id"] in self.community_ids \
            or grid["town_id"] in self.town_ids

    def holds(self, grid):
        """Whether ``grid`` is in this area: one the caller works in, heads or leads."""
        return grid["id"] in self.grid_ids or self.leads(grid)

    def case_filter(self):
        """A store filter for the cases this area covers (``None``: every case)."""
        if self.everywhere:
            return None
        # one id as an equality: an $in leading a filter is a scan of every case on some stores
        parts = [{key: next(iter(ids)) if len(ids) == 1 else {"$in": sorted(ids)}} for key, ids in (
            ("grid_id", self.grid_ids), ("community_id", self.community_ids),
            ("town_id", self.town_ids), ("department.id", self.department_ids)) if ids]
        if not parts:
            return {"_id": {"$in": []}}
        # one indexed condition in the usual case of a single role ($or is a scan on some stores)
        return parts[0] if len(parts) == 1 else {"$or": parts}


def _headed_by(record, subject):
    return (record.get("head") or {}).get("id") == subject


def grids_of_caller(caller, registry):
    """``[(grid, role)]``: the grids ``caller`` heads (``grid_head``, with that role) or works
    in (``grid_worker``), as the registry says; nothing without a grid role."""
    if not caller.has_any({"grid_worker", "grid_head"}):
        return []
    heads = "grid_head" in caller.roles
    return [(grid, "grid_head" if heads and _headed_by(grid, caller.subject) else "grid_worker")
            for grid in registry.grids_of_person(caller.subject)]


def area_of(caller, registry):
    if caller.has_any(EVERYWHERE_ROLES):
        return Area(everywhere=True)
    subject = caller.subject
    mine = grids_of_caller(caller, registry)
    grids = {grid["id"] for grid, _ in mine}
    headed = {grid["id"] for grid, role in mine if role == "grid_head"}
    communities = {cid for cid, c in registry.communities.items() if _headed_by(c, subject)} if caller.has_any({"community_lead"}) else set()
    towns = {tid for tid, t in registry.towns.items() if _headed_by(t, subject)} if caller.has_any({"town_lead"}) else set()
    departments = ({did for did, d in registry.departments.items() if (d.get("contact") or {}).get("id") == subject}
                   if caller.has_any({"department"}) else set())
    return Area(False, frozenset(grids), frozenset(communities), frozenset(towns), frozenset(departments), frozenset(headed))


def case_role(caller, registry, case):
    """The role ``caller`` acts on ``case`` in (timelines record it), or ``None``
    when the case is outside their area."""
    area = area_of(caller, registry)
    if area.everywhere:
        return "county_center" if "county_center" in caller.roles else "county_admin"
    return area.role_for(case)


def require_case_access(caller, registry, case):
    """The role ``caller`` acts on ``case`` in, or ``Forbidden``."""
    role = case_role(caller, registry, case)
    if role is None:
        raise Forbidden("This case is outside your area.", {"case_id": ["Not in the grids, community, town or department you serve."]})
    return role


def require_dispatch(caller):
    if not caller.has_any(DISPATCH_ROLES):
        raise Forbidden("Only the county command centre places and re-dispatches cases.",
                        {"role": [f"Needs one of: {', '.join(sorted(DISPATCH_ROLES))}."]})


def dispatcher_towns(caller, registry):
    """``(everywhere, towns)``: the queues ``caller`` dispatches — every queue for the
    command centre, their towns' for a town lead."""
    area = area_of(caller, registry)
    return area.everywhere, (area.town_ids if caller.has_any({"town_lead"}) else frozenset())


def require_dispatcher_of(caller, registry, case, grid=None):
    """A case is dispatched by the command centre, or by the lead of the town whose queue
    it waits in (or, not waiting, the town it is in), to a grid of that town or a department."""
    everywhere, towns = dispatcher_towns(caller, registry)
    if everywhere:
        return "county_center" if "county_center" in caller.roles else "county_admin"
    mine = in_queue_of(case, towns, everywhere) if case.get("awaiting_dispatch") else case.get("town_id") in towns
    if not mine:
        raise Forbidden("This case is not in your dispatch queue.",
                        {"case_id": ["Waits in the county's queue or another town's."]})
    if grid is not None and grid["town_id"] not in towns:
        raise Forbidden("You dispatch within your town; the command centre sends cases to other towns.",
                        {"grid_id": ["Not a grid of your town."]})
    return "town_lead"


def require_assignment(caller, registry, case, grid_id):
    """Who may hand ``case`` to a worker of ``grid_id``: within the case's own grid,
    its grid head and the community or town lead over it; another grid, or anyone
    else, is the command centre's."""
    grid = registry.grid(grid_id)
    if grid is not None and grid_id == case.get("grid_id") and area_of(caller, registry).leads(grid):
        return
    require_dispatch(caller)


def require_worker_access(caller, registry, worker_id):
    """A worker's case list: the worker themselves, and whoever heads or leads one
    of the grids they work in or head (grid heads, community and town leads, the county)."""
    if caller.subject == worker_id:
        return
    area = area_of(caller, registry)
    if area.everywhere or any(area.leads(grid) for grid in registry.grids_of_person(worker_id)):
        return
    raise Forbidden("Only the worker and their leads read a worker's cases.",
                    {"worker_id": ["Not you, and not a worker of a grid you head or lead."]})


def reporter_reader(caller, role, case):
    """Why ``caller`` (acting in ``role``) may read the resident's name and phone
    on ``case`` — ``"assignee"`` or a lead role, for the audit log — or ``None``."""
    if caller.subject == (case.get("assignee") or {}).get("id"):
        return "assignee"
    return role if role in LEAD_ROLES else None
