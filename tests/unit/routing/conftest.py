import uuid

import pytest

from services.routing.classification import RequestClassification
from services.routing.learned_classifier import load_or_train
from services.routing.storage import RoutingStore
from wangge.config import load_config, service_config_path
from wangge.mongo import connect


@pytest.fixture
def store(mongo_uri):
    """Routing's storage over a real store, on a database of the test's own."""
    client = connect(mongo_uri)
    store = RoutingStore(client[f"routing_unit_{uuid.uuid4().hex[:8]}"])
    store.ensure_indexes({"REGISTRY": {"AREA_INDEX": True}})
    yield store
    client.close()


@pytest.fixture(scope="session")
def request_classification():
    """The classifier routing runs with: the model trained from the shipped corpus
    (cached under var/classifier), held to the shipped confidence threshold."""
    learned = load_or_train()
    threshold = load_config(service_config_path("routing"))["CLASSIFIER"]["CONFIDENCE_THRESHOLD"]
    return RequestClassification(learned, threshold, getattr(learned, "version", None))
