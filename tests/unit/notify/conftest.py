import uuid

import pytest

from services.notify.storage import NotificationStore
from wangge.mongo import connect


@pytest.fixture
def store(mongo_uri):
    """Notify's store on a database of the test's own."""
    client = connect(mongo_uri)
    store = NotificationStore(client[f"notify_unit_{uuid.uuid4().hex[:8]}"])
    store.ensure_indexes()
    yield store
    client.close()
