"""Which cases a person may see and act on: their role (from the identity
provider) and their area (from the grid registry, the source of truth for who
belongs where).

* ``grid_worker``, ``grid_head``: cases of the grids they work in or head;
* ``community_lead``, ``town_lead``: cases of the community or town they head;
* ``department``: cases escalated to the department they are the contact of;
* ``county_center``, ``county_admin``: every case (the command centre triages and
  re-dispatches; the administrator may do what any staff role may).
"""
from dataclasses import dataclass, field

from wangge.auth import Forbidden

EVERYWHERE_ROLES = frozenset({"county_center", "county_admin"})
DISPATCH_ROLES = EVERYWHERE_ROLES


@dataclass(frozen=True)
class Area:
    everywhere: bool = False
    grid_ids: frozenset = field(default_factory=frozenset)
    community_ids: frozenset = field(default_factory=frozenset)
    town_ids: frozenset = field(default_factory=frozenset)
    department_ids: frozenset = field(default_factory=frozenset)

    def covers(self, case):
        if self.everywhere:
            return True
        department = (case.get("department") or {}).get("id")
        return (case.get("grid_id") in self.grid_ids or case.get("community_id") in self.community_ids
                or case.get("town_id") in self.town_ids
                or (case.get("level") == "department" and department in self.department_ids))

    def case_filter(self):
        """A store filter for the cases this area covers (``None``: every case)."""
        if self.everywhere:
            return None
        parts = [{key: {"$in": sorted(ids)}} for key, ids in (
            ("grid_id", self.grid_ids), ("community_id", self.community_ids),
            ("town_id", self.town_ids), ("department.id", self.department_ids)) if ids]
        if not parts:
            return {"_id": {"$in": []}}
        # one indexed condition in the usual case of a single role ($or is a scan on some stores)
        return parts[0] if len(parts) == 1 else {"$or": parts}


def area_of(caller, registry):
    if caller.has_any(EVERYWHERE_ROLES):
        return Area(everywhere=True)
    subject = caller.subject

    def headed_by(record):
        return (record.get("head") or {}).get("id") == subject

    grids = set()
    if caller.has_any({"grid_worker", "grid_head"}):
        grids = {grid_id for grid_id, grid in registry.index.grids.items()
                 if headed_by(grid) or any(worker["id"] == subject for worker in grid.get("workers", []))}
    communities = {cid for cid, c in registry.communities.items() if headed_by(c)} if caller.has_any({"community_lead"}) else set()
    towns = {tid for tid, t in registry.towns.items() if headed_by(t)} if caller.has_any({"town_lead"}) else set()
    departments = ({did for did, d in registry.departments.items() if (d.get("contact") or {}).get("id") == subject}
                   if caller.has_any({"department"}) else set())
    return Area(False, frozenset(grids), frozenset(communities), frozenset(towns), frozenset(departments))


def require_case_access(caller, registry, case):
    if not area_of(caller, registry).covers(case):
        raise Forbidden("This case is outside your area.", {"case_id": ["Not in the grids, community, town or department you serve."]})


def require_dispatch(caller):
    if not caller.has_any(DISPATCH_ROLES):
        raise Forbidden("Only the county command centre places and re-dispatches cases.",
                        {"role": [f"Needs one of: {', '.join(sorted(DISPATCH_ROLES))}."]})
