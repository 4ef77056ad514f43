"""The grid registry: validating a registry file and flattening it into the
records routing stores and indexes."""
from marshmallow import ValidationError

from wangge.errors import ApiError
from shapely.geometry import shape

from services.routing.locate import GridIndex
from services.routing.registry_schema import RegistrySchema


class RegistryRejected(ApiError):
    """The file is invalid; ``problems`` maps key paths (towns[2].communities[0].id) to messages."""

    http_status = 400
    error_code = "invalid_registry"

    def __init__(self, problems):
        super().__init__(f"The registry file has {len(problems)} problem(s); see fields.", problems)


def key_paths(messages, prefix=""):
    """marshmallow's nested error dict as ``{"towns[0].communities[1].name": [...]}``."""
    flat = {}
    for key, value in messages.items():
        path = f"{prefix}[{key}]" if isinstance(key, int) else (f"{prefix}.{key}" if prefix else str(key))
        if isinstance(value, dict):
            flat.update(key_paths(value, path))
        else:
            flat[path] = value
    return flat


def validate_registry(document):
    try:
        registry = RegistrySchema().load(document)
    except ValidationError as error:
        raise RegistryRejected(key_paths(error.messages)) from error
    problems = {}
    seen = {}
    for path, kind, record_id in _ids(registry):
        if (kind, record_id) in seen:
            problems[f"{path}.id"] = [f"Duplicate {kind} id {record_id!r} (first at {seen[(kind, record_id)]})."]
        seen.setdefault((kind, record_id), path)
    groups = {}
    for t, town in enumerate(registry["towns"]):
        for c, community in enumerate(town["communities"]):
            for g, grid in enumerate(community["grids"]):
                path = f"towns[{t}].communities[{c}].grids[{g}]"
                for group in grid["wechat_groups"]:
                    if group in groups:
                        problems[f"{path}.wechat_groups"] = [f"WeChat group {group!r} already belongs to {groups[group]}."]
                    groups.setdefault(group, grid["id"])
                if "area" in grid and not shape(grid["area"]).is_valid:
                    problems[f"{path}.area"] = ["The polygon is not valid (it crosses itself)."]
    if problems:
        raise RegistryRejected(problems)
    return registry


def _ids(registry):
    for t, town in enumerate(registry["towns"]):
        yield f"towns[{t}]", "town", town["id"]
        for c, community in enumerate(town["communities"]):
            yield f"towns[{t}].communities[{c}]", "community", community["id"]
            for g, grid in enumerate(community["grids"]):
                yield f"towns[{t}].communities[{c}].grids[{g}]", "grid", grid["id"]
    for d, department in enumerate(registry["departments"]):
        yield f"departments[{d}]", "department", department["id"]


def prepare_registry(document):
    """A registry document checked and flattened: ``(registry, (towns, communities, grids, departments))``;
    plain CPU work, safe to run off the event loop."""
    registry = validate_registry(document)
    return registry, flatten(registry)


def flatten(registry):
    """(towns, communities, grids, departments) as flat records keyed by ``id``."""
    towns, communities, grids = [], [], []
    for town in registry["towns"]:
        towns.append({"id": town["id"], "name": town["name"], "head": town.get("head")})
        for community in town["communities"]:
            communities.append({
                "id": community["id"], "name": community["name"], "kind": community["kind"],
                "head": community.get("head"), "town_id": town["id"],
            })
            for grid in community["grids"]:
                record = {
                    **grid,
                    "town_id": town["id"], "town_name": town["name"],
                    "community_id": community["id"], "community_name": community["name"],
                    # who leads the grid's community and town, for services that scope by them
                    "community_head": community.get("head"), "town_head": town.get("head"),
                    "centroid": None,
                }
                if grid.get("area"):
                    point = shape(grid["area"]).centroid
                    record["centroid"] = {"lon": round(point.x, 6), "lat": round(point.y, 6)}
                grids.append(record)
    return towns, communities, grids, list(registry["departments"])


class RegistrySnapshot:
    """One registry edition in memory: the grid index plus lookups by id."""

    def __init__(self, edition, towns, communities, grids, departments):
        self.edition = edition
        self.index = GridIndex(grids, towns)
        self.towns = {town["id"]: town for town in towns}
        self.communities = {community["id"]: community for community in communities}
        self.departments = {department["id"]: department for department in departments}

    @classmethod
    def load(cls, store, edition):
        if edition is None:
            return cls(None, [], [], [], [])
        records = {kind: store.registry_records(kind, edition) for kind in ("towns", "communities", "grids", "departments")}
        return cls(edition, records["towns"], records["communities"], records["grids"], records["departments"])

    def grid(self, grid_id):
        return self.index.grids.get(grid_id)

    def names_unknown_place(self, request):
        """Whether ``request`` names a grid or a WeChat group this edition does not hold:
        another process may have loaded a newer edition since this one was read."""
        grid_id, group = request.get("grid_id"), request.get("wechat_group_id")
        return bool(grid_id and grid_id not in self.index.grids) or bool(group and group not in self.index.by_wechat_group)

    def grids_of_person(self, person_id):
        """The grids ``person_id`` works in or heads."""
        return [grid for grid in self.index.grids.values()
                if (grid.get("head") or {}).get("id") == person_id or any(w["id"] == person_id for w in grid.get("workers", []))]

    def town(self, town_id):
        return self.towns.get(town_id)

    def community(self, community_id):
        return self.communities.get(community_id)

    def department(self, department_id):
        return self.departments.get(department_id)

    def department_for(self, case):
        """Who handles ``case`` above the town: a department that lists its subclass, else
        the taxonomy's responsible department, else one that lists its routing category."""
        subclass, category = case.get("subclass"), case.get("category")
        listing = next((d for d in self.departments.values() if subclass and subclass in d["categories"]), None)
        return listing or self.departments.get(case.get("responsible_department") or "") \
            or next((d for d in self.departments.values() if category in d["categories"]), None)


class RegistryCache:
    """The snapshot of the edition in force, rebuilt when another process (or
    this one) switches editions; the edition is checked at most every
    ``check_seconds``."""

    def __init__(self, check_seconds):
        self.check_seconds = check_seconds
        self.snapshot = None
        self.checked_at = None

    def current(self, store, now):
        if self.snapshot is None or self.checked_at is None or (now - self.checked_at).total_seconds() >= self.check_seconds:
            edition = store.registry_edition()
            while self.snapshot is None or self.snapshot.edition != edition:
                loaded = RegistrySnapshot.load(store, edition)
                # Two loads during one read can drop the edition being read (each
                # load keeps only its predecessor): keep the snapshot only if its
                # edition was still in force once it had been read.
                edition = store.registry_edition()
                if loaded.edition == edition:
                    self.snapshot = loaded
            self.checked_at = now
        return self.snapshot

    def invalidate(self):
        self.checked_at = None
