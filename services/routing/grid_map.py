"""The county map of the command centre: every grid of the caller's area as a GeoJSON
feature (its area, or no geometry when the registry has none) with its open and
overdue cases, so a map draws the whole county from one answer.

The grids are those the caller's area holds (every grid for the command centre, a
town lead's town, a worker's own grids), and those where cases the caller sees lie
(a department's cases, escalated from grids anywhere). Cases no grid contains wait in
the dispatcher's queue and are on no grid; those in a town count for their town
(``unplaced_by_town``)."""
from services.routing.lifecycle import OPEN_STATUSES
from services.routing.workflow import case_query, within


def open_case_filter(area):
    """A store filter for the open cases the area covers."""
    return within({"status": {"$in": list(OPEN_STATUSES)}}, area.case_filter())


def overdue_case_filter(area, now):
    """A store filter for the open cases the area covers that are past a deadline (as ``overdue=true`` lists them)."""
    return case_query({"overdue": True}, now, area.case_filter())


def unplaced(case_filter):
    """The cases of ``case_filter`` that lie in a town but in none of its grids yet."""
    return within(case_filter, {"grid_id": None, "town_id": {"$ne": None}})


def grids_on_map(area, grids, open_counts):
    """The grids the caller's map shows, by id: the area's, and those holding its open cases."""
    return sorted((grid for grid in grids if area.holds(grid) or grid["id"] in open_counts), key=lambda grid: grid["id"])


def feature(grid, open_count, overdue_count):
    return {
        "type": "Feature",
        "id": grid["id"],
        "geometry": grid.get("area"),
        "properties": {
            "grid_id": grid["id"], "name": grid["name"],
            "town_id": grid["town_id"], "town": grid.get("town_name"),
            "community_id": grid["community_id"], "community": grid.get("community_name"),
            "centroid": grid.get("centroid"), "open": open_count, "overdue": overdue_count,
        },
    }


def feature_collection(edition, grids, open_counts, overdue_counts, unplaced_open, unplaced_overdue):
    """``grids`` as a GeoJSON FeatureCollection with their counts (``{grid_id: n}``), and
    the open and overdue cases in no grid by town (``{town_id: n}``); ``version`` names the
    registry edition the areas come from."""
    return {
        "type": "FeatureCollection", "version": edition,
        "features": [feature(grid, open_counts.get(grid["id"], 0), overdue_counts.get(grid["id"], 0)) for grid in grids],
        "unplaced_by_town": [{"town_id": town_id, "open": unplaced_open[town_id], "overdue": unplaced_overdue.get(town_id, 0)}
                             for town_id in sorted(unplaced_open)],
    }
