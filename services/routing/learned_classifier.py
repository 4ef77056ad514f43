"""Classify a resident's request into the taxonomy (``taxonomy.yml``) with a
linear model learned from the labelled corpus in ``corpus/``.

The model reads character n-grams (robust to typos and to text without
punctuation, as voice input gives it), jieba words, the taxonomy's keywords of
each subclass and the keyword rules of ``rules.yml`` the text touches; a
multinomial logistic regression gives every subclass a probability, and a
classification names the top three. Besides the corpus it learns from each
subclass's name and description, which is how a county's edit of the taxonomy
reaches the model before the corpus has examples of it. The keyword
rules still decide urgency: a gas smell or someone trapped is urgent whatever
the model thinks (``rules.yml``'s and the taxonomy's ``urgent_keywords``).

The probabilities are calibrated by temperature scaling: one temperature,
fitted on predictions for a fold of the train rows by a model that did not learn
from them, rescales the model's scores so that a probability says about how
often such answers are right. Routing dispatches a request by itself only when
its top probability reaches ``CONFIDENCE_THRESHOLD`` (``config.yml``); ``eval``
derives that threshold from the held-out split (``confidence_threshold``) and
reports what it means there.

The model and its temperature are fitted on the corpus rows marked ``train``
only; the ``test`` rows are the held-out split ``eval`` reports on and chooses
the threshold from (``cv`` cross-validates on the train
rows, to try a change without looking at the held-out ones). Training takes seconds, so the model
is not shipped: ``load_or_train`` builds it on first use and caches it under
``var/classifier/``, named by a fingerprint of everything it was built from.

    python -m services.routing.learned_classifier train     # make classifier
    python -m services.routing.learned_classifier build     # the cached model, trained only if there is none
    python -m services.routing.learned_classifier eval      # make eval-classifier
    python -m services.routing.learned_classifier classify 菜市场旁边的公共厕所很脏
"""
import argparse
import csv
import dataclasses
import hashlib
import logging
import math
import os
import sys
import tempfile
import time
import unicodedata
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import joblib
import numpy as np
import sklearn
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax, softmax
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score, log_loss, recall_score
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import FeatureUnion, Pipeline

from services.routing.classify import DEFAULT_RULES_PATH, Classifier as KeywordClassifier, load_rules
from services.routing.taxonomy import DEFAULT_TAXONOMY_PATH, load_taxonomy

CORPUS_DIR = Path(__file__).with_name("corpus")
DEFAULT_MODEL_DIR = Path(__file__).resolve().parents[2] / "var" / "classifier"
CORPUS_COLUMNS = ["subclass", "split", "text"]
SPLITS = ("train", "test")
TOP = 3
# Bump when the features or the model change, so a cached model of the old kind
# is never loaded.
MODEL_FORMAT = 2
# Chosen by 5-fold cross-validation on the train rows (`cv`): longer character
# n-grams and more weight on words overfit a corpus of this size.
CHAR_NGRAMS = (1, 2)
WORD_NGRAMS = (1, 2)
FEATURE_WEIGHTS = {"chars": 1.0, "words": 0.5, "subclass_keywords": 0.2, "rules": 0.2}
REGULARISATION_C = 100.0
CV_FOLDS = 5
# The temperature is fitted on one of the CV_FOLDS folds of the train rows (one
# extra model to train: fitting it on all five would make training six times
# slower, and each fold's temperature is within 0.04 of the one fitted on all
# five); fewer rows than this in that fold cannot pin it down, and the
# probabilities stay the model's own.
MIN_CALIBRATION_ROWS = 100
# Auto-dispatch only where the held-out requests that reach the threshold are
# right this often: a wrong dispatch costs a return (退单) and a day, a
# dispatcher's look at the three suggestions costs minutes.
TARGET_ACCURACY = 0.97
THRESHOLD_STEP = 0.01
REPORTED_THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99)
PROBABILITY_DECIMALS = 4
# Clauses of a subclass's description ("路灯、庭院灯、景观灯不亮") are training
# documents of their own.
_CLAUSE_BREAKS = str.maketrans({mark: "|" for mark in "、，。；：（）"})


class CorpusError(ValueError):
    """A corpus row that cannot be used; the message names the file and line."""


@dataclass(frozen=True)
class Example:
    text: str
    subclass: str
    split: str
    source: str  # file:line


@dataclass(frozen=True)
class Candidate:
    subclass: str
    major: str
    name: str
    probability: float


@dataclass(frozen=True)
class LearnedClassification:
    subclass: str
    major: str
    probability: float
    candidates: tuple[Candidate, ...]  # the top three, most likely first
    urgent: bool
    complexity: str
    department: str
    category: str  # today's routing category of the subclass
    matched: tuple[str, ...]  # the keywords behind urgency and complexity, in text order


@dataclass(frozen=True)
class Prepared:
    """What the feature extractors read of one text."""
    chars: tuple[str, ...]  # runs of letters and digits, punctuation and spaces dropped
    words: tuple[str, ...]
    subclass_keywords: tuple[str, ...]  # subclasses one of whose taxonomy keywords occurs, once per keyword
    rules: tuple[str, ...]  # rules.yml categories whose keywords occur, once per occurrence


def load_corpus(corpus_dir=CORPUS_DIR, taxonomy=None):
    """Every labelled request of ``corpus_dir/*.tsv``; raises CorpusError naming
    the file and line of a row with an unknown subclass or split, or a text seen before."""
    taxonomy = taxonomy or load_taxonomy()
    examples, first_seen = [], {}
    for path in sorted(Path(corpus_dir).glob("*.tsv")):
        with open(path, encoding="utf-8", newline="") as file:
            reader = csv.reader(file, delimiter="\t", quoting=csv.QUOTE_NONE)
            if next(reader, None) != CORPUS_COLUMNS:
                raise CorpusError(f"{path.name}:1: the header must be {' / '.join(CORPUS_COLUMNS)}, tab-separated.")
            for line_number, row in enumerate(reader, start=2):
                source = f"{path.name}:{line_number}"
                if len(row) != len(CORPUS_COLUMNS):
                    raise CorpusError(f"{source}: give {len(CORPUS_COLUMNS)} tab-separated columns.")
                subclass, split, text = (value.strip() for value in row)
                if subclass not in taxonomy.subclasses:
                    raise CorpusError(f"{source}: {subclass!r} is not a subclass of the taxonomy.")
                if split not in SPLITS:
                    raise CorpusError(f"{source}: the split must be one of {', '.join(SPLITS)}.")
                key = _normalise(text).replace(" ", "")  # punctuation and spaces aside
                if not key:
                    raise CorpusError(f"{source}: the text is empty.")
                if key in first_seen:
                    raise CorpusError(f"{source}: the same text as {first_seen[key]}.")
                first_seen[key] = source
                examples.append(Example(text, subclass, split, source))
    if not examples:
        raise CorpusError(f"No labelled requests in {corpus_dir}.")
    return examples


def _normalise(text):
    # NFKC folds full-width letters, digits and punctuation into their plain forms.
    return " ".join("".join(char if char.isalnum() else " " for char in unicodedata.normalize("NFKC", text).lower()).split())


def _char_ngrams(document):
    grams = []
    for run in document.chars:
        padded = f" {run} "
        for size in range(CHAR_NGRAMS[0], CHAR_NGRAMS[1] + 1):
            grams += [padded[start:start + size] for start in range(len(padded) - size + 1)]
    return [gram for gram in grams if gram.strip()]


def _word_ngrams(document):
    words = document.words
    grams = list(words)
    for size in range(2, WORD_NGRAMS[1] + 1):
        grams += [" ".join(words[start:start + size]) for start in range(len(words) - size + 1)]
    return grams


def _subclass_keyword_features(document):
    return list(document.subclass_keywords)


def _rule_features(document):
    return list(document.rules)


def build_model():
    """The untrained pipeline: three vectorisers over a Prepared text and a linear model."""
    def vectoriser(analyzer):
        return TfidfVectorizer(analyzer=analyzer, sublinear_tf=True, lowercase=False)
    features = FeatureUnion(
        [("chars", vectoriser(_char_ngrams)), ("words", vectoriser(_word_ngrams)),
         ("subclass_keywords", vectoriser(_subclass_keyword_features)), ("rules", vectoriser(_rule_features))],
        transformer_weights=FEATURE_WEIGHTS,
    )
    return Pipeline([("features", features), ("model", LogisticRegression(C=REGULARISATION_C, max_iter=5000))])


class LinearScorer:
    """The fitted pipeline's ``decision_function`` for one text at a time, computed
    from its fitted parts: each vectoriser's vocabulary and idf, the union's
    weights and the model's coefficients. scikit-learn's own call builds and checks
    sparse matrices for a single short text, most of a classification's time; this
    reads the same numbers (the tests hold both to the same logits)."""

    # the vectorisers' settings its arithmetic is for (build_model's)
    SETTINGS = {"norm": "l2", "use_idf": True, "sublinear_tf": True, "binary": False, "dtype": np.float64}

    @classmethod
    def fits(cls, pipeline):
        """Whether the scorer computes this pipeline's scores: a model built otherwise
        is scored by scikit-learn itself."""
        union = pipeline.named_steps["features"]
        return all(vectoriser.get_params()[name] == value
                   for _, vectoriser in union.transformer_list for name, value in cls.SETTINGS.items())

    def __init__(self, pipeline):
        self.pipeline = pipeline
        union, model = pipeline.named_steps["features"], pipeline.named_steps["model"]
        self.blocks, offset = [], 0
        for name, vectoriser in union.transformer_list:
            weight = (union.transformer_weights or {}).get(name, 1.0)
            self.blocks.append((vectoriser.analyzer, vectoriser.vocabulary_, vectoriser.idf_, weight, offset))
            offset += len(vectoriser.vocabulary_)
        self.coefficients = np.ascontiguousarray(model.coef_.T)  # one row per feature
        self.intercept = model.intercept_

    def logits(self, document):
        """As ``pipeline.decision_function([document])[0]``: each vectoriser's terms
        as sublinear tf times idf, normalised to unit length, times its weight."""
        rows, values = [], []
        for analyzer, vocabulary, idf, weight, offset in self.blocks:
            counts = Counter(vocabulary[term] for term in analyzer(document) if term in vocabulary)
            if not counts:
                continue
            columns = np.fromiter(counts.keys(), dtype=np.intp, count=len(counts))
            tfidf = (np.log(np.fromiter(counts.values(), dtype=float, count=len(counts))) + 1.0) * idf[columns]
            rows.append(columns + offset)
            values.append(tfidf * (weight / np.linalg.norm(tfidf)))
        if not rows:
            return self.intercept.copy()
        return self.intercept + np.concatenate(values) @ self.coefficients[np.concatenate(rows)]


def _folds(folds=CV_FOLDS):
    return StratifiedKFold(folds, shuffle=True, random_state=0)


def fit_temperature(logits, truth):
    """The temperature T that minimises the log-loss of softmax(logits / T) on
    these rows (``truth``: each row's column in ``logits``)."""
    logits, rows = np.asarray(logits), np.arange(len(truth))

    def log_loss_at(log_temperature):
        return -log_softmax(logits / np.exp(log_temperature), axis=1)[rows, truth].mean()
    return float(np.exp(minimize_scalar(log_loss_at, bounds=(-3.0, 3.0), method="bounded").x))


class LearnedClassifier:
    """A trained model with the taxonomy and keyword rules it was built with.

    ``version`` names the model: the fingerprint of the files it was built from
    (``fingerprint``), set by ``train`` and ``load_or_train``, so a case can record
    which model classified it; None for a model trained here from examples alone.
    """

    def __init__(self, taxonomy, rules, model=None, temperature=1.0, version=None):
        self.taxonomy = taxonomy
        self.rules = rules
        self.temperature = temperature
        self.version = version
        # The taxonomy's urgent words join the rules' in a keyword classifier of
        # our own, which keeps its own jieba dictionary.
        self.keywords = KeywordClassifier(dataclasses.replace(
            rules, urgent_keywords=tuple(dict.fromkeys(rules.urgent_keywords + taxonomy.urgent_keywords)),
        ))
        self._rule_keywords = {
            category_id: frozenset(category.keywords) for category_id, category in rules.categories.items()
        }
        self._subclass_keywords = [
            (_normalise(keyword).replace(" ", ""), code)
            for code, subclass in taxonomy.subclasses.items() for keyword in subclass.keywords
        ]
        self.model = model
        self._scorer = None

    def prepare(self, text):
        normalised = _normalise(text)
        tokens = self.keywords.tokens(unicodedata.normalize("NFKC", text).lower())
        joined = normalised.replace(" ", "")
        return Prepared(
            chars=tuple(normalised.split()),
            words=tuple(tokens),
            subclass_keywords=tuple(code for keyword, code in self._subclass_keywords if keyword in joined),
            rules=tuple(
                category_id for token in tokens
                for category_id, keywords in self._rule_keywords.items() if token in keywords
            ),
        )

    def taxonomy_documents(self):
        """(text, subclass) of each subclass's name with its description, and of
        each clause of the description."""
        documents = []
        for code, subclass in self.taxonomy.subclasses.items():
            documents.append((f"{subclass.name}：{subclass.description}", code))
            clauses = subclass.description.translate(_CLAUSE_BREAKS).split("|")
            documents += [(clause, code) for clause in clauses if len(clause.strip()) >= 2]
        return documents

    def train(self, examples):
        """Fit the model on the examples marked train and the taxonomy's own
        words, and its temperature on a fold of those examples."""
        training = [example for example in examples if example.split == "train"]
        documents = [self.prepare(example.text) for example in training]
        labels = [example.subclass for example in training]
        extra = [(self.prepare(text), code) for text, code in self.taxonomy_documents()]
        self.model = build_model().fit(documents + [document for document, _ in extra],
                                       labels + [code for _, code in extra])
        self.temperature = self._calibration_temperature(documents, labels, extra)
        return self

    def _calibration_temperature(self, documents, labels, extra):
        """The temperature fitted on the first fold of the train rows, as predicted
        by a model trained like the real one on the other folds."""
        if len(labels) < CV_FOLDS * MIN_CALIBRATION_ROWS:
            return 1.0
        fit_rows, check_rows = next(_folds().split(documents, labels))
        model = build_model().fit([documents[i] for i in fit_rows] + [document for document, _ in extra],
                                  [labels[i] for i in fit_rows] + [code for _, code in extra])
        # The taxonomy's documents give every subclass to every model, so each label has a column.
        column = {code: index for index, code in enumerate(model.classes_)}
        logits = model.decision_function([documents[i] for i in check_rows])
        return fit_temperature(logits, [column[labels[i]] for i in check_rows])

    def cross_validate(self, examples, folds=CV_FOLDS):
        """Mean accuracy over stratified folds of the train examples (each fold's
        model also learns the taxonomy's words); the held-out examples are not read."""
        training = [example for example in examples if example.split == "train"]
        prepared = [self.prepare(example.text) for example in training]
        labels = [example.subclass for example in training]
        extra = [(self.prepare(text), code) for text, code in self.taxonomy_documents()]
        scores = []
        for fit_rows, check_rows in _folds(folds).split(prepared, labels):
            model = build_model().fit([prepared[i] for i in fit_rows] + [document for document, _ in extra],
                                      [labels[i] for i in fit_rows] + [code for _, code in extra])
            scores.append(model.score([prepared[i] for i in check_rows], [labels[i] for i in check_rows]))
        return sum(scores) / len(scores)

    def probabilities(self, texts, calibrated=True):
        """Each text's probability per subclass, in the order of ``self.model.classes_``;
        ``calibrated=False`` gives the model's own (temperature 1)."""
        documents = [self.prepare(text) for text in texts]
        if self._scorer is None or self._scorer[0] is not self.model:  # (model, its scorer or None)
            self._scorer = (self.model, LinearScorer(self.model) if LinearScorer.fits(self.model) else None)
        scorer = self._scorer[1]
        logits = np.array([scorer.logits(document) for document in documents]) if scorer else self.model.decision_function(documents)
        return softmax(logits / (self.temperature if calibrated else 1.0), axis=1)

    def classify(self, text):
        probabilities = self.probabilities([text])[0]
        ranked = sorted(zip(self.model.classes_, probabilities), key=lambda pair: -pair[1])[:TOP]
        candidates = tuple(
            Candidate(str(code), self.taxonomy.subclasses[code].major, self.taxonomy.subclasses[code].name,
                      round(float(p), PROBABILITY_DECIMALS))
            for code, p in ranked
        )
        best = self.taxonomy.subclasses[candidates[0].subclass]
        keywords = self.keywords.classify(text)
        complex_case = best.complexity == "complex" or any(word in keywords.matched for word in self.rules.complex_keywords)
        return LearnedClassification(
            subclass=best.code,
            major=best.major,
            probability=candidates[0].probability,
            candidates=candidates,
            urgent=best.urgent or keywords.urgent,
            complexity="complex" if complex_case else "simple",
            department=best.department,
            category=best.category,
            matched=tuple(word for word in keywords.matched
                          if word in self.keywords.rules.urgent_keywords or word in self.rules.complex_keywords),
        )


def fingerprint(corpus_dir=CORPUS_DIR, taxonomy_path=DEFAULT_TAXONOMY_PATH, rules_path=DEFAULT_RULES_PATH):
    """Names a model by everything it is built from: a change to any retrains it."""
    digest = hashlib.sha256(f"format {MODEL_FORMAT}; scikit-learn {sklearn.__version__}\n".encode())
    for path in [Path(taxonomy_path), Path(rules_path), *sorted(Path(corpus_dir).glob("*.tsv"))]:
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def train(corpus_dir=CORPUS_DIR, taxonomy_path=DEFAULT_TAXONOMY_PATH, rules_path=DEFAULT_RULES_PATH):
    taxonomy = load_taxonomy(taxonomy_path)
    classifier = LearnedClassifier(taxonomy, load_rules(rules_path),
                                   version=fingerprint(corpus_dir, taxonomy_path, rules_path))
    return classifier.train(load_corpus(corpus_dir, taxonomy))


def load_or_train(model_dir=DEFAULT_MODEL_DIR, corpus_dir=CORPUS_DIR, taxonomy_path=DEFAULT_TAXONOMY_PATH,
                  rules_path=DEFAULT_RULES_PATH):
    """The cached model built from these files, trained and cached first if there is none."""
    version = fingerprint(corpus_dir, taxonomy_path, rules_path)
    model_path = Path(model_dir) / f"model-{version}.joblib"
    if model_path.exists():
        try:
            saved = joblib.load(model_path)
            return LearnedClassifier(load_taxonomy(taxonomy_path), load_rules(rules_path), saved["model"],
                                     saved["temperature"], version)
        except Exception:  # noqa: BLE001 - a cache that cannot be read is rebuilt, never a reason to stop
            logging.getLogger(__name__).warning("cached classifier unreadable: training again", extra={"model": version},
                                                exc_info=True)
    classifier = train(corpus_dir, taxonomy_path, rules_path)
    save(classifier, model_path)
    return classifier


def save(classifier, model_path):
    """Write the model beside its final name and move it there, so a reader never
    finds half a file; older models in the folder are removed."""
    model_path = Path(model_path)
    model_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=model_path.parent, suffix=".tmp", delete=False) as file:
        joblib.dump({"model": classifier.model, "temperature": classifier.temperature}, file)
    os.replace(file.name, model_path)
    for old in model_path.parent.glob("model-*.joblib"):
        if old != model_path:
            old.unlink(missing_ok=True)


@dataclass(frozen=True)
class Dispatch:
    """What a confidence threshold means on the held-out split."""
    threshold: float
    dispatched: int  # requests whose top probability reaches the threshold: dispatched without a dispatcher
    dispatched_right: int
    waiting: int  # the others, which wait for a dispatcher with the top 3
    waiting_right: int  # of those, how many have the right subclass first
    waiting_in_top3: int  # … and among the three suggestions

    @property
    def coverage(self):
        return self.dispatched / (self.dispatched + self.waiting)

    @property
    def dispatched_accuracy(self):
        return self.dispatched_right / self.dispatched if self.dispatched else None

    @property
    def waiting_accuracy(self):
        return self.waiting_right / self.waiting if self.waiting else None

    @property
    def waiting_top3_accuracy(self):
        return self.waiting_in_top3 / self.waiting if self.waiting else None


def dispatch_at(threshold, top_probabilities, right, right_in_top3):
    reaches = np.asarray(top_probabilities) >= threshold
    right, right_in_top3 = np.asarray(right, dtype=bool), np.asarray(right_in_top3, dtype=bool)
    return Dispatch(
        threshold=threshold,
        dispatched=int(reaches.sum()), dispatched_right=int((right & reaches).sum()),
        waiting=int((~reaches).sum()), waiting_right=int((right & ~reaches).sum()),
        waiting_in_top3=int((right_in_top3 & ~reaches).sum()),
    )


def confidence_threshold(top_probabilities, right, target=TARGET_ACCURACY, step=THRESHOLD_STEP):
    """The lowest multiple of ``step`` at which, and at every higher multiple,
    the requests whose top probability reaches it are right at least ``target``
    of the time (a threshold no request reaches counts as met). Asking it of
    every higher threshold too keeps a run of lucky answers in a weak band from
    lowering it. 1.0 when not even that one meets the target."""
    top_probabilities, right = np.asarray(top_probabilities), np.asarray(right, dtype=bool)
    steps = round(1 / step)
    threshold = 1.0
    for multiple in range(steps, -1, -1):
        candidate = multiple / steps
        reaches = top_probabilities >= candidate
        if reaches.any() and right[reaches].mean() < target:
            break
        threshold = candidate
    return threshold


def wilson_interval(successes, trials, z=1.96):
    """The 95 % Wilson score interval of a proportion: how far a held-out figure
    of this size can be from the true one."""
    share = successes / trials
    centre = (share + z * z / (2 * trials)) / (1 + z * z / trials)
    half = z * math.sqrt(share * (1 - share) / trials + z * z / (4 * trials * trials)) / (1 + z * z / trials)
    return centre - half, centre + half


@dataclass(frozen=True)
class Evaluation:
    size: int
    accuracy: float
    macro_f1: float
    top3_accuracy: float
    major_accuracy: float
    recall: dict[str, float]  # per subclass
    support: dict[str, int]
    confusions: list[tuple[str, str, int]]  # (true, predicted, count), most frequent first
    mistakes: list[tuple[str, str, str]]  # (text, true, predicted)
    temperature: float
    log_loss: float  # of the calibrated probabilities
    uncalibrated_log_loss: float  # of the model's own
    dispatch: Dispatch  # at the threshold confidence_threshold chooses on the calibrated probabilities
    uncalibrated_dispatch: Dispatch  # … on the model's own, to show what calibration changes
    dispatch_table: list[Dispatch]  # at REPORTED_THRESHOLDS and the chosen one


def _top_probabilities(probabilities):
    # As rounded in a classification, which is what routing compares with the threshold.
    return np.round(probabilities.max(axis=1), PROBABILITY_DECIMALS)


def evaluate(classifier, examples):
    """How the classifier does on the held-out rows (never trained on)."""
    held_out = [example for example in examples if example.split == "test"]
    truth = [example.subclass for example in held_out]
    texts = [example.text for example in held_out]
    probabilities = classifier.probabilities(texts)
    uncalibrated = classifier.probabilities(texts, calibrated=False)
    classes = list(classifier.model.classes_)
    ranked = [[classes[index] for index in row.argsort()[::-1][:TOP]] for row in probabilities]
    predicted = [row[0] for row in ranked]
    # Scaling by a temperature keeps each request's order of subclasses, so the
    # answers are the same; only how sure they look changes.
    right = [true == guess for true, guess in zip(truth, predicted)]
    in_top3 = [true in row for true, row in zip(truth, ranked)]

    def dispatch_by_rule(probabilities):
        top = _top_probabilities(probabilities)
        return dispatch_at(confidence_threshold(top, right), top, right, in_top3)
    dispatch = dispatch_by_rule(probabilities)
    top = _top_probabilities(probabilities)
    labels = sorted(set(truth))
    recalls = recall_score(truth, predicted, labels=labels, average=None, zero_division=0)
    major = classifier.taxonomy.subclasses
    confusions = Counter((true, guess) for true, guess in zip(truth, predicted) if true != guess)
    return Evaluation(
        size=len(held_out),
        accuracy=accuracy_score(truth, predicted),
        macro_f1=f1_score(truth, predicted, labels=labels, average="macro", zero_division=0),
        top3_accuracy=sum(in_top3) / len(held_out),
        major_accuracy=sum(major[true].major == major[guess].major for true, guess in zip(truth, predicted)) / len(held_out),
        recall=dict(zip(labels, (float(value) for value in recalls))),
        support=dict(Counter(truth)),
        confusions=sorted(((true, guess, count) for (true, guess), count in confusions.items()), key=lambda c: (-c[2], c[0], c[1])),
        mistakes=[(example.text, true, guess) for example, true, guess in zip(held_out, truth, predicted) if true != guess],
        temperature=classifier.temperature,
        log_loss=log_loss(truth, probabilities, labels=classes),
        uncalibrated_log_loss=log_loss(truth, uncalibrated, labels=classes),
        dispatch=dispatch,
        uncalibrated_dispatch=dispatch_by_rule(uncalibrated),
        dispatch_table=[dispatch_at(threshold, top, right, in_top3)
                        for threshold in sorted({*REPORTED_THRESHOLDS, dispatch.threshold})],
    )


# The requests the keyword rules got wrong, as residents wrote them.
FIELD_EXAMPLES = [
    ("菜市场旁边的公共厕所很脏", "public_toilets"),
    ("进村的水泥路塌了一个大坑", "road_damage"),
    ("台风过后路上倒了一棵大树，挡住了路", "trees"),
    ("楼上漏水把我家天花板泡坏了，楼上不肯赔偿", "neighbour_disputes"),
    ("楼下广场舞天天跳到晚上十点，吵得孩子没法写作业", "noise"),
    ("隔壁邻居在楼顶私自搭了个铁皮房", "illegal_construction"),
]


def report(classifier, examples, evaluation):
    """The evaluation as Markdown; the same corpus, taxonomy and rules give the same text."""
    taxonomy = classifier.taxonomy
    train_size = sum(example.split == "train" for example in examples)

    def label(code):
        return f"{code} ({taxonomy.subclasses[code].name})"

    def share(value):
        return "—" if value is None else f"{value:.1%}"
    dispatch, uncalibrated = evaluation.dispatch, evaluation.uncalibrated_dispatch
    low, high = wilson_interval(dispatch.dispatched_right, dispatch.dispatched) if dispatch.dispatched else (0, 0)

    lines = [
        "# The learned classifier on the held-out split",
        "",
        "Made by `make eval-classifier` (`python -m services.routing.learned_classifier eval`); do not edit by hand.",
        "",
        f"- taxonomy version {taxonomy.version}: {len(taxonomy.majors)} major classes, {len(taxonomy.subclasses)} subclasses",
        f"- corpus: {len(examples)} labelled requests, {train_size} trained on, {evaluation.size} held out",
        f"- model: logistic regression over character {CHAR_NGRAMS[0]}–{CHAR_NGRAMS[1]}-grams, jieba words and word pairs,"
        f" the taxonomy's keywords and the keyword rules (scikit-learn {sklearn.__version__}),"
        f" trained on the train rows and the taxonomy's descriptions",
        f"- probabilities calibrated by temperature scaling (T = {evaluation.temperature:.3f}, fitted on one fold of"
        " the train rows as predicted by a model trained on the other four; the held-out rows only choose the threshold)",
        "- reproduce: `make eval-classifier`; try a change without reading the held-out rows:"
        " `python -m services.routing.learned_classifier cv`",
        "",
        "| measure | held-out split |",
        "|---|---|",
        f"| accuracy (subclass) | {evaluation.accuracy:.1%} |",
        f"| macro-F1 (subclass) | {evaluation.macro_f1:.1%} |",
        f"| top-3 accuracy | {evaluation.top3_accuracy:.1%} |",
        f"| accuracy (major class) | {evaluation.major_accuracy:.1%} |",
        f"| log-loss | {evaluation.log_loss:.3f} |",
        "",
        "## Confidence threshold: which requests are dispatched without a dispatcher",
        "",
        f"Rule: the lowest threshold (a multiple of {THRESHOLD_STEP}) at which, and at every higher one, the held-out"
        f" requests whose top probability reaches it are right at least {TARGET_ACCURACY:.0%} of the time."
        " Below it a case waits for a dispatcher with the top 3. Routing's `CLASSIFIER.CONFIDENCE_THRESHOLD`"
        " (`services/routing/config.yml`) must be this value; a unit test checks it.",
        "",
        "| | held-out split |",
        "|---|---|",
        f"| threshold | **{dispatch.threshold:.2f}** |",
        f"| dispatched without a dispatcher (coverage) | {dispatch.coverage:.1%} ({dispatch.dispatched} of {evaluation.size}) |",
        f"| accuracy of those | {share(dispatch.dispatched_accuracy)} (95% interval {low:.1%}–{high:.1%}) |",
        f"| waiting for a dispatcher | {dispatch.waiting} |",
        f"| accuracy of the ones waiting (first suggestion) | {share(dispatch.waiting_accuracy)} |",
        f"| top-3 accuracy of the ones waiting (the suggestions) | {share(dispatch.waiting_top3_accuracy)} |",
        "",
        "| threshold | dispatched | accuracy | waiting | accuracy waiting | top-3 waiting |",
        "|---|---|---|---|---|---|",
        *(f"| {row.threshold:.2f} | {row.coverage:.1%} | {share(row.dispatched_accuracy)} | {row.waiting}"
          f" | {share(row.waiting_accuracy)} | {share(row.waiting_top3_accuracy)} |" for row in evaluation.dispatch_table),
        "",
        "## What calibration changes",
        "",
        "The same model's answers; only the probabilities differ.",
        "",
        f"| held-out split | the model's own probabilities | calibrated (T = {evaluation.temperature:.3f}) |",
        "|---|---|---|",
        f"| log-loss | {evaluation.uncalibrated_log_loss:.3f} | {evaluation.log_loss:.3f} |",
        f"| threshold by the rule | {uncalibrated.threshold:.2f} | {dispatch.threshold:.2f} |",
        f"| dispatched at it | {uncalibrated.coverage:.1%} | {dispatch.coverage:.1%} |",
        f"| accuracy of those | {share(uncalibrated.dispatched_accuracy)} | {share(dispatch.dispatched_accuracy)} |",
        "",
        "## The requests the keyword rules got wrong",
        "",
        "| request | expected | top 3 |",
        "|---|---|---|",
    ]
    for text, expected in FIELD_EXAMPLES:
        result = classifier.classify(text)
        top = ", ".join(f"{candidate.subclass} {candidate.probability:.2f}" for candidate in result.candidates)
        mark = "" if result.subclass == expected else " ✗"
        lines.append(f"| {text} | {expected}{mark} | {top} |")
    lines += ["", "## Recall per subclass", "", "| major class | subclass | held out | recall |", "|---|---|---|---|"]
    for major in taxonomy.majors.values():
        for code in major.subclasses:
            if code in evaluation.recall:
                lines.append(f"| {major.name} | {label(code)} | {evaluation.support[code]} | {evaluation.recall[code]:.0%} |")
    lines += ["", "## Top confusions", "", "| true | predicted | count |", "|---|---|---|"]
    lines += [f"| {label(true)} | {label(guess)} | {count} |" for true, guess, count in evaluation.confusions[:15]]
    lines += ["", "## Every held-out mistake", "", "| request | true | predicted |", "|---|---|---|"]
    lines += [f"| {text} | {true} | {guess} |" for text, true, guess in evaluation.mistakes]
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m services.routing.learned_classifier", description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=CORPUS_DIR)
    parser.add_argument("--taxonomy", type=Path, default=DEFAULT_TAXONOMY_PATH)
    parser.add_argument("--rules", type=Path, default=DEFAULT_RULES_PATH)
    parser.add_argument("--model-dir", type=Path, default=DEFAULT_MODEL_DIR)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("train", help="train on the corpus's train rows and cache the model under --model-dir")
    evaluate_command = commands.add_parser("eval", help="train, then report on the held-out rows")
    evaluate_command.add_argument("--report", type=Path, help="also write the report (Markdown) here")
    commands.add_parser("cv", help=f"{CV_FOLDS}-fold cross-validation on the train rows (the held-out rows are not read)")
    classify_command = commands.add_parser("classify", help="the top 3 subclasses of each text")
    classify_command.add_argument("texts", nargs="+")
    commands.add_parser("build", help="make sure the model for these files is cached under --model-dir (train only if it is not)")
    args = parser.parse_args(argv)

    if args.command == "build":
        started = time.monotonic()
        classifier = load_or_train(args.model_dir, args.corpus, args.taxonomy, args.rules)
        print(f"classifier model {classifier.version} ready in {time.monotonic() - started:.1f} s")
        return 0

    if args.command == "classify":
        classifier = load_or_train(args.model_dir, args.corpus, args.taxonomy, args.rules)
        for text in args.texts:
            result = classifier.classify(text)
            top = "  ".join(f"{c.subclass} {c.name} {c.probability:.2f}" for c in result.candidates)
            flags = ", ".join(filter(None, ["urgent" if result.urgent else "", result.complexity, result.department]))
            print(f"{text}\n  {top}\n  {flags}")
        return 0
    if args.command == "cv":
        taxonomy = load_taxonomy(args.taxonomy)
        classifier = LearnedClassifier(taxonomy, load_rules(args.rules))
        accuracy = classifier.cross_validate(load_corpus(args.corpus, taxonomy))
        print(f"{CV_FOLDS}-fold cross-validated accuracy on the train rows: {accuracy:.1%}")
        return 0
    started = time.monotonic()
    classifier = train(args.corpus, args.taxonomy, args.rules)
    seconds = time.monotonic() - started
    examples = load_corpus(args.corpus, classifier.taxonomy)
    if args.command == "train":
        model_path = args.model_dir / f"model-{fingerprint(args.corpus, args.taxonomy, args.rules)}.joblib"
        save(classifier, model_path)
        trained = sum(example.split == "train" for example in examples)
        print(f"Trained on {trained} of {len(examples)} labelled requests in {seconds:.1f} s: {model_path}")
        return 0
    print(f"Trained on {sum(example.split == 'train' for example in examples)} labelled requests in {seconds:.1f} s.",
          file=sys.stderr)
    text = report(classifier, examples, evaluate(classifier, examples))
    print(text, end="")
    if args.report:
        args.report.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    # Run as the package's module, not as __main__: a model pickles its feature functions
    # by their module's name, and the service loads it as services.routing.learned_classifier.
    from services.routing import learned_classifier
    sys.exit(learned_classifier.main())
