import uuid

import pytest

from services.intake.storage import RequestStore
from wangge.mongo import connect


@pytest.fixture
def store(mongo_uri):
    """Intake's store over a database of the test's own."""
    client = connect(mongo_uri)
    store = RequestStore(client[f"intake_unit_{uuid.uuid4().hex[:8]}"])
    store.ensure_indexes()
    yield store
    client.close()
