"""Routing's shared in-process state: the registry snapshot and the classifier."""
import logging
import time

from eventlet import tpool
from nameko.extensions import DependencyProvider

from services.routing.classification import RequestClassification
from services.routing.classify import DEFAULT_RULES_PATH
from services.routing.learned_classifier import DEFAULT_MODEL_DIR, load_or_train
from services.routing.registry import RegistryCache

log = logging.getLogger(__name__)


class Registry(DependencyProvider):
    """The registry edition in force, as a snapshot with its spatial index."""

    def setup(self):
        self.cache = RegistryCache(float(self.container.config["REGISTRY"]["CHECK_SECONDS"]))

    def get_dependency(self, worker_ctx):
        return self.cache


class RequestClassifier(DependencyProvider):
    """The learned classifier, loaded at start from the model cached for this corpus,
    taxonomy and rules, or trained first (seconds) when there is none."""

    def setup(self):
        config = self.container.config
        settings = config["CLASSIFIER"]
        started = time.monotonic()
        # seconds of CPU when it trains: in a thread, so the process's other greenlets run meanwhile
        learned = tpool.execute(
            load_or_train, settings.get("MODEL_DIR") or DEFAULT_MODEL_DIR, rules_path=config.get("RULES_FILE") or DEFAULT_RULES_PATH,
        )
        model = getattr(learned, "version", None)
        self.classification = RequestClassification(learned, settings["CONFIDENCE_THRESHOLD"], model)
        log.info("classifier ready", extra={"model": model, "seconds": round(time.monotonic() - started, 1),
                                            "threshold": self.classification.threshold})

    def get_dependency(self, worker_ctx):
        return self.classification
