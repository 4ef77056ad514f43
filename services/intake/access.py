"""Who files for whom and who reads what, from the verified caller (``None``: anonymous).

* An integrator speaks for one system, the ``source`` claim of its token: what it
  files is filed under that source, and it looks up only that source's requests.
* The command centre (``county_center``) and ``county_admin`` look up any source
  and read every request in full (see ``views``).
* Everyone else files under the request's channel as its source.
* An ``Idempotency-Key`` is only compared with the keys of the same sender
  (:func:`idempotency_scope`), so one caller never gets another's tracking number.
* The sentiment log (:func:`sentiment_log_grid`): the command centre reads every
  grid's; grid workers and heads the grids they work in or head, community and
  town leads the grids of the community or town they head, one grid at a time
  (routing's record of a grid names its head, workers and the heads of its
  community and town; nothing tells a person's grids all at once).
"""
from wangge.auth import Forbidden
from wangge.grid_directory import serves_grid

EVERYWHERE_ROLES = frozenset({"county_center", "county_admin"})
INTEGRATOR = "integrator"


def is_integrator(caller):
    return caller is not None and INTEGRATOR in caller.roles


def sees_everything(caller):
    return caller is not None and caller.has_any(EVERYWHERE_ROLES)


def integrator_source(caller):
    if not caller.source:
        raise Forbidden("Your token names no source system.", {"source": ["An integrator's token must carry its source claim."]})
    return caller.source


def filing_source(caller, channel, named_source):
    """The source a request is filed under, or :class:`Forbidden` naming ``source``:
    an integrator's is its token's; anyone else's is the channel they file through,
    so nobody can file under an integrator's name."""
    if is_integrator(caller):
        source = integrator_source(caller)
        if named_source not in (None, source):
            raise Forbidden(f"Your token files for {source} only.", {"source": [f"Must be {source} (your token's source) or left out."]})
        return source
    if named_source not in (None, channel):
        raise Forbidden("Only an integrator's token files for another system.",
                        {"source": [f"Must be {channel} (the channel) or left out; systems file with their integrator token."]})
    return channel


def require_lookup(caller, source):
    """Integrators look up their own source; the command centre any."""
    if sees_everything(caller):
        return
    own = integrator_source(caller)  # past the permission, everyone else is an integrator
    if source != own:
        raise Forbidden("You may look up only your own system's requests.", {"source": [f"Must be {own}, your token's source."]})


def sees_in_full(caller, request):
    if sees_everything(caller):
        return True
    return is_integrator(caller) and caller.source is not None and caller.source == request.get("source")


def idempotency_scope(caller):
    """Whose keys a filing's ``Idempotency-Key`` is compared with: residents
    without a token share one scope (keys are random, and a repeat shows them only
    the public view), an integrator's system its own, every other person or service
    their own."""
    if caller is None:
        return "public"
    if is_integrator(caller):
        return f"source:{integrator_source(caller)}"
    return f"subject:{caller.subject}"


def sentiment_log_grid(caller, grid_id, grids):
    """The grid whose entries ``caller`` reads (``None``: every grid's), or
    :class:`Forbidden` naming ``grid_id``. ``grids`` reads a grid's record."""
    if sees_everything(caller):
        return grid_id
    if grid_id is None:
        raise Forbidden("Name the grid whose log you read.", {"grid_id": ["Required: a grid you work in, head or lead."]})
    if not serves_grid(caller, grids.grid(grid_id)):
        raise Forbidden(f"{grid_id} is not a grid you work in, head or lead.",
                        {"grid_id": [f"{grid_id} is not a grid you work in, head or lead."]})
    return grid_id
