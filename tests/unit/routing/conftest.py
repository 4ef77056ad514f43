import uuid

import pytest

from services.routing.storage import RoutingStore
from wangge.mongo import connect


@pytest.fixture
def store(mongo_uri):
    """Routing's storage over a real store, on a database of the test's own."""
    client = connect(mongo_uri)
    store = RoutingStore(client[f"routing_unit_{uuid.uuid4().hex[:8]}"])
    store.ensure_indexes({"REGISTRY": {"AREA_INDEX": True}})
    yield store
    client.close()
