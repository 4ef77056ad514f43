"""Classify a resident's request (诉求) into a category, a complexity and an
urgency flag from the keyword rules in ``rules.yml``.

Matching is by whole jieba tokens, never by substring: 灯 does not match inside
灯笼, nor 受伤 inside 不受伤害.
"""
import logging
from dataclasses import dataclass
from pathlib import Path

import jieba
import yaml
from marshmallow import RAISE, Schema, ValidationError, fields, post_load, validate, validates_schema

DEFAULT_RULES_PATH = Path(__file__).with_name("rules.yml")
COMPLEXITIES = ("simple", "complex")
# As frequent as the top 2% of jieba's words, so a keyword beats a rare
# dictionary word straddling it: 路灯不亮 is 路灯/不亮, not 路/灯不亮 (灯不亮 has
# frequency 3). Far too small to split common words: 灯笼 stays one token.
KEYWORD_MIN_FREQUENCY = 1000

# jieba's default cut keeps runs of these characters together and splits on
# everything else, so a keyword with any other character could never be a token.
_keyword = fields.String(validate=validate.Regexp(
    r"^[\u4E00-\u9FD5a-zA-Z0-9+#&._%-]+$",
    error="Give one word: Chinese characters, letters or digits, without spaces or punctuation.",
))
_id = validate.Regexp(r"^[a-z][a-z0-9_]{0,63}$", error="Use 1 to 64 lowercase letters, digits or '_', starting with a letter.")


@dataclass(frozen=True)
class Category:
    name: str
    keywords: tuple[str, ...]
    complexity: str


@dataclass(frozen=True)
class Rules:
    version: int
    categories: dict[str, Category]  # in file order, which breaks ties
    urgent_keywords: tuple[str, ...]
    complex_keywords: tuple[str, ...]
    default_category: str


@dataclass(frozen=True)
class Classification:
    category: str
    complexity: str
    urgent: bool
    matched: tuple[str, ...]  # the keywords behind the result, in text order


class StrictSchema(Schema):
    class Meta:
        unknown = RAISE


class CategorySchema(StrictSchema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=50))
    keywords = fields.List(_keyword, load_default=list)
    complexity = fields.String(required=True, validate=validate.OneOf(COMPLEXITIES))

    @post_load
    def make(self, data, **kwargs):
        return Category(data["name"], tuple(data["keywords"]), data["complexity"])


class CategoriesField(fields.Field):
    """Category id → category, in file order. Errors are keyed by the category
    id ({"roads": {"complexity": [...]}}), which fields.Dict would bury under
    "value"."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, dict) or not value:
            raise ValidationError("Give at least one category, keyed by its id.")
        categories, errors = {}, {}
        for category_id, body in value.items():
            try:
                _id(str(category_id))
                categories[category_id] = CategorySchema().load(body)
            except ValidationError as error:
                errors[category_id] = error.messages
        if errors:
            raise ValidationError(errors)
        return categories


class RulesSchema(StrictSchema):
    version = fields.Integer(required=True, validate=validate.Equal(1))
    categories = CategoriesField(required=True)
    urgent_keywords = fields.List(_keyword, load_default=list)
    complex_keywords = fields.List(_keyword, load_default=list)
    default_category = fields.String(required=True)

    @validates_schema
    def default_is_a_category(self, data, **kwargs):
        if data.get("categories") and data.get("default_category") not in data["categories"]:
            raise ValidationError("Must be one of the categories.", "default_category")

    @post_load
    def make(self, data, **kwargs):
        return Rules(
            data["version"], data["categories"], tuple(data["urgent_keywords"]),
            tuple(data["complex_keywords"]), data["default_category"],
        )


def load_rules(path):
    """Read and validate a rule file; raises marshmallow.ValidationError."""
    with open(path, encoding="utf-8") as file:
        return RulesSchema().load(yaml.safe_load(file) or {})


class Classifier:
    def __init__(self, rules):
        jieba.setLogLevel(logging.WARNING)
        self.rules = rules
        self._keywords_by_category = {
            category_id: frozenset(category.keywords) for category_id, category in rules.categories.items()
        }
        self._urgent_keywords = frozenset(rules.urgent_keywords)
        self._complex_keywords = frozenset(rules.complex_keywords)
        # A tokenizer of our own, so these keywords (and ones a newer rule file
        # drops) do not change how the rest of the process segments text.
        self._tokenizer = jieba.Tokenizer()
        keywords = [keyword for category in rules.categories.values() for keyword in category.keywords]
        keywords += [*rules.urgent_keywords, *rules.complex_keywords]
        # In file order: each add_word shifts jieba's frequencies, so a set's
        # random order could segment differently from one run to the next.
        for keyword in dict.fromkeys(keywords):
            self._tokenizer.add_word(keyword, max(self._tokenizer.suggest_freq(keyword), KEYWORD_MIN_FREQUENCY))

    def tokens(self, text):
        """jieba's tokens without punctuation and whitespace, what duplicates compare."""
        return self._segment(text, hmm=True)

    def classify(self, text, hinted_category=None):
        # jieba's HMM finds unknown words (汤洋村), which helps comparing texts, but
        # glues a one-character keyword to its neighbours (灯坏了 → 灯坏). Every
        # keyword is in the dictionary, so matching does without it.
        tokens = self._segment(text, hmm=False)
        category_id = self._best_category(tokens)
        if category_id is None:
            # The sender's category is trusted only when the words say nothing.
            category_id = hinted_category if hinted_category in self.rules.categories else self.rules.default_category
        deciding = self._keywords_by_category[category_id] | self._complex_keywords | self._urgent_keywords
        complex_case = any(token in self._complex_keywords for token in tokens)
        return Classification(
            category=category_id,
            complexity="complex" if complex_case else self.rules.categories[category_id].complexity,
            urgent=any(token in self._urgent_keywords for token in tokens),
            matched=tuple(dict.fromkeys(token for token in tokens if token in deciding)),
        )

    def _segment(self, text, hmm):
        return [token for token in self._tokenizer.lcut(text, HMM=hmm) if any(char.isalnum() for char in token)]

    def _best_category(self, tokens):
        best_id, best_score = None, 0
        for category_id, keywords in self._keywords_by_category.items():
            score = sum(token in keywords for token in tokens)
            if score > best_score:  # strictly greater: the earlier category keeps a tie
                best_id, best_score = category_id, score
        return best_id
