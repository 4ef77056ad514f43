import pytest

from services.routing.registry import RegistryRejected, validate_registry


def registry(version):
    head = {"id": "w-h", "name": "张水如"}
    grid = {"id": "G-1", "name": "第一网格", "head": head}
    return {"version": version, "county": {"id": "yt", "name": "永泰县"},
            "towns": [{"id": "t", "name": "樟城镇", "communities": [{"id": "c", "name": "南门社区", "grids": [grid]}]}]}


def test_a_version_beyond_what_json_readers_and_the_store_keep_is_refused_naming_it():
    assert validate_registry(registry(2**53 - 1))["version"] == 2**53 - 1
    with pytest.raises(RegistryRejected) as refused:
        validate_registry(registry(2**63))
    assert "version" in refused.value.fields
