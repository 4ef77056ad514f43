"""How routing classifies a request: the learned classifier's top three
(``learned_classifier.py``) held to the confidence threshold, with urgency and
complexity from the keyword rules (a gas smell is urgent whatever the model
thinks), and the subclass a dispatcher picks instead."""
from dataclasses import dataclass

@dataclass(frozen=True)
class ClassFields:
    """What a case says of its class."""

    subclass: str
    subclass_name: str
    major: str
    major_name: str
    category: str  # the routing category SLA settings are keyed on
    responsible_department: str  # who handles it when it leaves the grid (the taxonomy's 权责清单)
    complexity: str
    urgent: bool

    def as_changes(self):
        return {
            "subclass": self.subclass, "subclass_name": self.subclass_name, "major": self.major,
            "major_name": self.major_name, "category": self.category, "responsible_department": self.responsible_department,
            "complexity": self.complexity, "urgent": self.urgent,
        }


def class_fields(taxonomy, subclass_code, complex_words, urgent_words):
    """The class of ``subclass_code`` for a text whose keywords made it complex or
    urgent (``complex_words``, ``urgent_words``): a subclass complex or urgent by
    nature is so whatever the words."""
    subclass = taxonomy.subclasses[subclass_code]
    return ClassFields(
        subclass=subclass.code, subclass_name=subclass.name, major=subclass.major,
        major_name=taxonomy.majors[subclass.major].name, category=subclass.category, responsible_department=subclass.department,
        complexity="complex" if subclass.complexity == "complex" or complex_words else "simple",
        urgent=subclass.urgent or bool(urgent_words),
    )


def choose_subclass(result, hinted, threshold):
    """``(subclass, confident)`` for a classifier ``result``. A sender's own class
    (a hotline operator's) settles a doubtful case when the model ranks it in its
    top three; the model decides otherwise."""
    if result.probability >= threshold:
        return result.subclass, True
    if hinted and hinted in {candidate.subclass for candidate in result.candidates}:
        return hinted, True
    return result.subclass, False


def classification_record(result, model, threshold, chosen, confident, hinted):
    """What a case keeps of how it was classified: the top three with their
    probabilities, the model and the threshold it was held to."""
    return {
        "model": model,
        "subclass": result.subclass,
        "probability": result.probability,
        "candidates": [
            {"subclass": c.subclass, "major": c.major, "name": c.name, "probability": c.probability} for c in result.candidates
        ],
        "threshold": threshold,
        "confident": confident,
        "hinted": hinted,
        "chosen": chosen,
    }


@dataclass(frozen=True)
class RequestClass:
    fields: ClassFields
    confident: bool  # False: it waits for a dispatcher
    record: dict  # classification_record
    keywords: tuple[str, ...]  # the words behind urgency and complexity, in text order


class RequestClassification:
    """A trained classifier, its model's name and the threshold a case is held to."""

    def __init__(self, learned, threshold, model):
        self.learned = learned
        self.threshold = float(threshold)
        self.model = model

    @property
    def taxonomy(self):
        return self.learned.taxonomy

    def tokens(self, text):
        """jieba's words of ``text``, what near-duplicates are compared by."""
        return self.learned.keywords.tokens(text)

    def classify(self, text, hinted=None):
        result = self.learned.classify(text)
        chosen, confident = choose_subclass(result, hinted, self.threshold)
        complex_words, urgent_words, keywords = self._keywords(text)
        return RequestClass(
            fields=class_fields(self.taxonomy, chosen, complex_words, urgent_words),
            confident=confident,
            record=classification_record(result, self.model, self.threshold, chosen, confident, hinted),
            keywords=keywords,
        )

    def reclassify(self, text, subclass):
        """The class fields of ``subclass`` (a dispatcher's choice) for ``text``."""
        complex_words, urgent_words, _ = self._keywords(text)
        return class_fields(self.taxonomy, subclass, complex_words, urgent_words)

    def _keywords(self, text):
        found = self.learned.keywords.classify(text)
        complex_words = [word for word in found.matched if word in self.learned.rules.complex_keywords]
        urgent_words = [word for word in found.matched if word in self.learned.keywords.rules.urgent_keywords]
        return complex_words, urgent_words, tuple(word for word in found.matched if word in {*complex_words, *urgent_words})
