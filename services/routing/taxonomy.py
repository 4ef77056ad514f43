"""The taxonomy of residents' requests in ``taxonomy.yml``: major classes, their
subclasses and what each subclass means for handling (department, SLA,
complexity, urgency), validated with errors that name the key path
(``majors.utilities.subclasses.street_lighting.sla.resolution_hours``)."""
from dataclasses import dataclass
from pathlib import Path

import yaml
from marshmallow import RAISE, Schema, ValidationError, fields, post_load, validate

from services.routing.registry import key_paths
from wangge.errors import ApiError

DEFAULT_TAXONOMY_PATH = Path(__file__).with_name("taxonomy.yml")
COMPLEXITIES = ("simple", "complex")

_code = validate.Regexp(r"^[a-z][a-z0-9_]{0,63}$", error="Use 1 to 64 lowercase letters, digits or '_', starting with a letter.")
# one word as jieba's default cut keeps it together (see classify.py)
_keyword = fields.String(validate=validate.Regexp(
    r"^[\u4E00-\u9FD5a-zA-Z0-9+#&._%-]+$",
    error="Give one word: Chinese characters, letters or digits, without spaces or punctuation.",
))
_text = validate.Length(min=1, max=300)


@dataclass(frozen=True)
class Sla:
    first_response_minutes: int
    resolution_hours: int


@dataclass(frozen=True)
class Subclass:
    code: str
    major: str
    name: str
    description: str
    examples: tuple[str, ...]
    keywords: tuple[str, ...]  # words pointing to it, found anywhere in a text
    department: str
    sla: Sla
    complexity: str
    urgent: bool
    category: str  # today's routing category (rules.yml)


@dataclass(frozen=True)
class MajorClass:
    code: str
    name: str
    standard: str | None
    subclasses: tuple[str, ...]  # subclass codes, in file order


@dataclass(frozen=True)
class Taxonomy:
    version: int
    departments: dict[str, str]  # id → name
    urgent_keywords: tuple[str, ...]
    majors: dict[str, MajorClass]  # in file order
    subclasses: dict[str, Subclass]  # every major's, in file order

    def major_of(self, subclass_code):
        return self.majors[self.subclasses[subclass_code].major]


class TaxonomyRejected(ApiError):
    """The file is invalid; ``fields`` maps key paths to messages."""

    http_status = 400
    error_code = "invalid_taxonomy"

    def __init__(self, problems):
        super().__init__(f"The taxonomy file has {len(problems)} problem(s): {problems}", problems)


class StrictSchema(Schema):
    class Meta:
        unknown = RAISE


class CodeKeyed(fields.Field):
    """A mapping of code → body loaded with ``schema``, in file order. Errors are
    keyed by the code ({"street_lighting": {"sla": [...]}}), which fields.Dict
    would bury under "value"."""

    def __init__(self, schema, **kwargs):
        super().__init__(**kwargs)
        self.schema = schema

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, dict) or not value:
            raise ValidationError("Give at least one entry, keyed by its code.")
        loaded, errors = {}, {}
        for code, body in value.items():
            try:
                _code(str(code))
                loaded[code] = self.schema().load(body)
            except ValidationError as error:
                errors[code] = error.messages
        if errors:
            raise ValidationError(errors)
        return loaded


class SlaSchema(StrictSchema):
    first_response_minutes = fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=7 * 24 * 60))
    resolution_hours = fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=90 * 24))

    @post_load
    def make(self, data, **kwargs):
        return Sla(**data)


class SubclassSchema(StrictSchema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=50))
    description = fields.String(required=True, validate=_text)
    examples = fields.List(fields.String(validate=_text), required=True, validate=validate.Length(min=1, max=10))
    keywords = fields.List(_keyword, load_default=list, validate=validate.Length(max=50))
    department = fields.String(required=True, validate=_code)
    sla = fields.Nested(SlaSchema, required=True)
    complexity = fields.String(required=True, validate=validate.OneOf(COMPLEXITIES))
    urgent = fields.Boolean(required=True, truthy={True}, falsy={False})  # YAML true or false, not "yes"
    category = fields.String(required=True, validate=_code)


class MajorSchema(StrictSchema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=50))
    standard = fields.String(load_default=None, validate=validate.Length(min=1, max=200))
    subclasses = CodeKeyed(SubclassSchema, required=True)


class TaxonomySchema(StrictSchema):
    version = fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=2**53 - 1))
    departments = fields.Dict(
        keys=fields.String(validate=_code), values=fields.String(validate=validate.Length(min=1, max=100)),
        required=True, validate=validate.Length(min=1),
    )
    urgent_keywords = fields.List(_keyword, load_default=list)
    majors = CodeKeyed(MajorSchema, required=True)


def validate_taxonomy(document):
    """The taxonomy a document describes; raises TaxonomyRejected naming each key path."""
    try:
        data = TaxonomySchema().load(document)
    except ValidationError as error:
        raise TaxonomyRejected(key_paths(error.messages)) from error
    problems, majors, subclasses, first_seen = {}, {}, {}, {}
    for major_code, major in data["majors"].items():
        for code, body in major["subclasses"].items():
            path = f"majors.{major_code}.subclasses.{code}"
            if code in first_seen:
                problems[path] = [f"Duplicate subclass code {code!r} (first at {first_seen[code]})."]
            first_seen.setdefault(code, path)
            if body["department"] not in data["departments"]:
                problems[f"{path}.department"] = ["Must be one of the departments."]
            subclasses.setdefault(code, Subclass(
                code=code, major=major_code, name=body["name"], description=body["description"],
                examples=tuple(body["examples"]), keywords=tuple(body["keywords"]), department=body["department"], sla=body["sla"],
                complexity=body["complexity"], urgent=body["urgent"], category=body["category"],
            ))
        majors[major_code] = MajorClass(major_code, major["name"], major["standard"], tuple(major["subclasses"]))
    if problems:
        raise TaxonomyRejected(problems)
    return Taxonomy(data["version"], dict(data["departments"]), tuple(data["urgent_keywords"]), majors, subclasses)


def load_taxonomy(path=DEFAULT_TAXONOMY_PATH):
    """Read and validate a taxonomy file; raises TaxonomyRejected."""
    with open(path, encoding="utf-8") as file:
        try:
            document = yaml.safe_load(file)
        except yaml.YAMLError as error:
            raise TaxonomyRejected({"": [f"Not YAML: {error}"]}) from error
    return validate_taxonomy(document if document is not None else {})
