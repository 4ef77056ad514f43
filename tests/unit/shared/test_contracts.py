"""Generated files others rely on (make contracts) match the code."""
import pytest

from devstack.contracts import GENERATED


@pytest.mark.parametrize("path", sorted(GENERATED), ids=lambda p: p.name)
def test_checked_in_contract_files_match_the_code(path):
    assert path.exists(), f"missing: run `make contracts` to generate {path.name}"
    assert path.read_text(encoding="utf-8") == GENERATED[path](), f"stale: run `make contracts` to regenerate {path.name}"
