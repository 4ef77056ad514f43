"""Which grid a request belongs to.

In order: the sender's explicit grid id → the WeChat group it came from → a known
building or estate named in the address → the grid whose area contains the point
→ otherwise the town's triage queue (the town found from the address if it can
be), where a person places it by hand.

Point lookups use an in-memory STRtree of the grid areas, rebuilt whenever the
registry changes: a store geo query per request slows down as polygons grow.
"""
from dataclasses import dataclass

from shapely import STRtree
from shapely.geometry import Point, shape

BY_GRID_ID = "grid_id"
BY_WECHAT_GROUP = "wechat_group"
BY_BUILDING = "building"
BY_POINT = "point"
TRIAGE = "triage"


@dataclass(frozen=True)
class Location:
    method: str
    grid_id: str | None = None
    town_id: str | None = None


class GridIndex:
    def __init__(self, grids, towns=()):
        self.grids = {grid["id"]: grid for grid in grids}
        self.by_wechat_group = {group: grid["id"] for grid in grids for group in grid.get("wechat_groups", [])}
        # Longest names first: 南湖花园二区 must win over 南湖花园.
        self.buildings = sorted(
            ((name, grid["id"]) for grid in grids for name in grid.get("buildings", [])),
            key=lambda item: -len(item[0]),
        )
        self.town_names = sorted(((town["name"], town["id"]) for town in towns), key=lambda item: -len(item[0]))
        with_area = [grid for grid in grids if grid.get("area")]
        self.area_ids = [grid["id"] for grid in with_area]
        self.tree = STRtree([shape(grid["area"]) for grid in with_area]) if with_area else None

    def __len__(self):
        return len(self.grids)

    def grid_for_point(self, lon, lat):
        if self.tree is None:
            return None
        hits = self.tree.query(Point(lon, lat), predicate="intersects")
        # A point on a shared edge touches two grids: the smaller id wins, always.
        return min((self.area_ids[i] for i in hits), default=None)

    def grid_for_address(self, address):
        for name, grid_id in self.buildings:
            if name in address:
                return grid_id
        return None

    def town_for_address(self, address):
        for name, town_id in self.town_names:
            if name in address:
                return town_id
        return None

    def locate(self, request):
        grid_id = request.get("grid_id")
        if grid_id in self.grids:
            return self._found(BY_GRID_ID, grid_id)
        grid_id = self.by_wechat_group.get(request.get("wechat_group_id"))
        if grid_id:
            return self._found(BY_WECHAT_GROUP, grid_id)
        address = request.get("address") or ""
        grid_id = address and self.grid_for_address(address)
        if grid_id:
            return self._found(BY_BUILDING, grid_id)
        location = request.get("location")
        grid_id = location and self.grid_for_point(location["lon"], location["lat"])
        if grid_id:
            return self._found(BY_POINT, grid_id)
        return Location(TRIAGE, None, self.town_for_address(address) if address else None)

    def _found(self, method, grid_id):
        return Location(method, grid_id, self.grids[grid_id]["town_id"])
