"""Routing's shared in-process state: the registry snapshot and the classifier."""
from nameko.extensions import DependencyProvider

from services.routing.classify import DEFAULT_RULES_PATH, Classifier, load_rules
from services.routing.registry import RegistryCache


class Registry(DependencyProvider):
    """The registry edition in force, as a snapshot with its spatial index."""

    def setup(self):
        self.cache = RegistryCache(float(self.container.config["REGISTRY"]["CHECK_SECONDS"]))

    def get_dependency(self, worker_ctx):
        return self.cache


class RequestClassifier(DependencyProvider):
    """Loads the keyword rules and the segmenter's dictionary once, at start."""

    def setup(self):
        self.classifier = Classifier(load_rules(self.container.config.get("RULES_FILE") or DEFAULT_RULES_PATH))

    def get_dependency(self, worker_ctx):
        return self.classifier
