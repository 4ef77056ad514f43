import pytest

from services.intake import access
from wangge.auth import Caller, Forbidden

HOTLINE = Caller("integrator-hotline12345", frozenset({"integrator"}), source="hotline12345")
WECHAT = Caller("integrator-wechat", frozenset({"integrator"}), source="wechat")
CENTRE = Caller("county-center", frozenset({"county_center"}))
ADMIN = Caller("county-admin", frozenset({"county_admin"}))
WORKER = Caller("w-zc-nanmen-02-1", frozenset({"grid_worker"}))


def forbidden_field(call, *args):
    with pytest.raises(Forbidden) as raised:
        call(*args)
    return set(raised.value.fields)


def test_an_integrator_files_under_its_tokens_source():
    assert access.filing_source(HOTLINE, "hotline", None) == "hotline12345"
    assert access.filing_source(HOTLINE, "hotline", "hotline12345") == "hotline12345"


def test_an_integrator_naming_another_source_is_refused_naming_source():
    assert forbidden_field(access.filing_source, HOTLINE, "hotline", "wechat") == {"source"}


def test_an_integrator_token_without_a_source_files_nothing():
    assert forbidden_field(access.filing_source, Caller("integrator-x", frozenset({"integrator"})), "web", None) == {"source"}


@pytest.mark.parametrize("caller", [None, WORKER, CENTRE])
def test_residents_and_staff_file_under_their_channel_and_never_for_a_system(caller):
    assert access.filing_source(caller, "web", None) == "web"
    assert access.filing_source(caller, "web", "web") == "web"
    assert forbidden_field(access.filing_source, caller, "web", "hotline12345") == {"source"}


def test_an_integrator_looks_up_its_own_source_only():
    access.require_lookup(HOTLINE, "hotline12345")
    assert forbidden_field(access.require_lookup, HOTLINE, "wechat") == {"source"}


@pytest.mark.parametrize("caller", [CENTRE, ADMIN])
def test_the_command_centre_looks_up_any_source(caller):
    access.require_lookup(caller, "wechat")


@pytest.mark.parametrize("caller, in_full", [
    (None, False), (WORKER, False), (WECHAT, False), (HOTLINE, True), (CENTRE, True), (ADMIN, True),
])
def test_who_reads_a_request_in_full(caller, in_full):
    assert access.sees_in_full(caller, {"source": "hotline12345"}) is in_full


def test_idempotency_keys_are_scoped_by_sender():
    scopes = [access.idempotency_scope(caller) for caller in (None, HOTLINE, WECHAT, CENTRE, WORKER)]
    assert len(set(scopes)) == len(scopes)
    # the same system under another client id is still the same sender
    assert access.idempotency_scope(Caller("integrator-hotline-2", frozenset({"integrator"}), source="hotline12345")) == \
        access.idempotency_scope(HOTLINE)


HEAD = Caller("w-zc-nanmen-02-h", frozenset({"grid_head"}))
COMMUNITY_LEAD = Caller("lead-zc-nanmen", frozenset({"community_lead"}))
TOWN_LEAD = Caller("lead-zhangcheng", frozenset({"town_lead"}))
OTHER_TOWN_LEAD = Caller("lead-chishui", frozenset({"town_lead"}))


def grid_record(grid_id, head, workers=(), community_head="lead-zc-nanmen", town_head="lead-zhangcheng"):
    """A grid as routing's GET /api/v1/grids/{grid_id} answers it."""
    return {"grid_id": grid_id, "head": {"id": head}, "workers": [{"id": worker} for worker in workers],
            "community_head": {"id": community_head}, "town_head": {"id": town_head}}


class Grids:
    """Routing's grid records, as GridRecords hands them out."""

    records = {"YT-ZC-NM-02": grid_record("YT-ZC-NM-02", "w-zc-nanmen-02-h", ["w-zc-nanmen-02-1"]),
               "YT-ZC-NM-01": grid_record("YT-ZC-NM-01", "w-zc-nanmen-01-h")}

    def grid(self, grid_id):
        return self.records.get(grid_id)


@pytest.mark.parametrize("caller", [WORKER, HEAD, COMMUNITY_LEAD, TOWN_LEAD])
def test_a_grids_workers_head_and_leads_read_its_sentiment_log(caller):
    assert access.sentiment_log_grid(caller, "YT-ZC-NM-02", Grids()) == "YT-ZC-NM-02"


@pytest.mark.parametrize("grid_id", ["YT-ZC-NM-01", "YT-NOWHERE", None])
def test_a_grid_worker_reads_no_other_grids_log_and_not_the_whole_county(grid_id):
    assert forbidden_field(access.sentiment_log_grid, WORKER, grid_id, Grids()) == {"grid_id"}


@pytest.mark.parametrize("caller", [OTHER_TOWN_LEAD, Caller("lead-zc-nanmen", frozenset({"town_lead"}))])
def test_a_lead_reads_only_the_grids_of_what_they_head_in_the_role_they_hold(caller):
    assert forbidden_field(access.sentiment_log_grid, caller, "YT-ZC-NM-02", Grids()) == {"grid_id"}


@pytest.mark.parametrize("caller", [CENTRE, ADMIN])
def test_the_command_centre_reads_every_grids_sentiment_log(caller):
    assert access.sentiment_log_grid(caller, None, Grids()) is None
    assert access.sentiment_log_grid(caller, "YT-ZC-NM-01", Grids()) == "YT-ZC-NM-01"
