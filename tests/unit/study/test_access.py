"""Who may record taking part for which grid, from the grid's record as routing serves it."""
import pytest

from services.study.access import OutsideYourGrids, require_grids
from wangge.auth import Caller

GRID = {"grid_id": "YT-ZC-NM-02", "head": {"id": "w-nm-02-h"}, "workers": [{"id": "w-nm-02-1"}],
        "community_head": {"id": "lead-zc-nanmen", "name": "南门社区网格站"}, "town_head": {"id": "lead-zhangcheng", "name": "樟城镇网格办"}}


class Directory:
    def grid(self, grid_id):
        return GRID if grid_id == GRID["grid_id"] else None


@pytest.mark.parametrize("subject, role", [
    ("w-nm-02-1", "grid_worker"), ("w-nm-02-h", "grid_head"), ("lead-zc-nanmen", "community_lead"),
    ("lead-zhangcheng", "town_lead"), ("editor", "study_editor"), ("county-admin", "county_admin"),
])
def test_those_who_work_head_or_lead_a_grid_record_for_it(subject, role):
    require_grids(Caller(subject, frozenset({role})), Directory(), ["YT-ZC-NM-02"])


@pytest.mark.parametrize("subject, role", [
    ("w-nm-02-1", "town_lead"),  # the right person in the wrong role
    ("lead-geling", "town_lead"), ("lead-zc-nanmen", "grid_worker"), ("someone", "grid_head"),
])
def test_others_are_refused_naming_the_grid(subject, role):
    with pytest.raises(OutsideYourGrids) as refused:
        require_grids(Caller(subject, frozenset({role})), Directory(), ["YT-ZC-NM-02", "YT-GL-XX-01"])
    assert refused.value.details["grid_ids"] == ["YT-GL-XX-01", "YT-ZC-NM-02"]
