import copy

import pytest
import yaml

from services.routing.classify import DEFAULT_RULES_PATH, load_rules
from services.routing.taxonomy import DEFAULT_TAXONOMY_PATH, TaxonomyRejected, load_taxonomy, validate_taxonomy

with open(DEFAULT_TAXONOMY_PATH, encoding="utf-8") as _file:
    SHIPPED = yaml.safe_load(_file)


def edited(change):
    document = copy.deepcopy(SHIPPED)
    change(document)
    return document


def problems_of(document):
    with pytest.raises(TaxonomyRejected) as rejected:
        validate_taxonomy(document)
    return rejected.value.fields


def test_the_shipped_taxonomy_is_a_size_that_can_be_labelled_well():
    taxonomy = load_taxonomy()
    assert 12 <= len(taxonomy.majors) <= 16
    assert 35 <= len(taxonomy.subclasses) <= 50
    assert all(len(major.subclasses) >= 2 for major in taxonomy.majors.values())


def test_city_management_classes_name_the_national_standard_they_follow():
    taxonomy = load_taxonomy()
    standards = " ".join(major.standard for major in taxonomy.majors.values() if major.standard)
    for standard_class in ("公用设施类", "道路交通类", "市容环境类", "园林绿化类", "宣传广告类", "施工管理类", "街面秩序类"):
        assert standard_class in standards
    assert taxonomy.majors["social_security"].standard is None


def test_a_subclass_knows_its_major_and_what_handling_it_needs():
    taxonomy = load_taxonomy()
    lamp = taxonomy.subclasses["street_lighting"]
    assert (lamp.major, lamp.department, lamp.complexity, lamp.urgent) == ("utilities", "power", "simple", False)
    assert lamp.sla.first_response_minutes == 120 and lamp.sla.resolution_hours == 72
    assert taxonomy.major_of("fire_gas").name == "安全隐患"
    assert taxonomy.subclasses["fire_gas"].urgent


def test_every_subclass_maps_to_a_category_routing_knows_today():
    categories = load_rules(DEFAULT_RULES_PATH).categories
    assert {subclass.category for subclass in load_taxonomy().subclasses.values()} <= set(categories)


def test_the_departments_of_todays_registry_keep_their_ids():
    departments = load_taxonomy().departments
    for department_id in ("power", "water", "urban_management", "transport", "justice", "civil_affairs",
                          "emergency", "housing", "health", "police"):
        assert department_id in departments


def test_a_missing_field_is_named_by_its_key_path():
    document = edited(lambda d: d["majors"]["utilities"]["subclasses"]["street_lighting"]["sla"].pop("resolution_hours"))
    assert problems_of(document) == {
        "majors.utilities.subclasses.street_lighting.sla.resolution_hours": ["Missing data for required field."],
    }


def test_an_unknown_department_is_named_by_its_key_path():
    document = edited(lambda d: d["majors"]["health"]["subclasses"]["medical_care"].update(department="hospital"))
    assert problems_of(document) == {"majors.health.subclasses.medical_care.department": ["Must be one of the departments."]}


def test_a_subclass_code_used_twice_is_refused_naming_both_places():
    def duplicate(document):
        document["majors"]["feedback"]["subclasses"]["street_lighting"] = document["majors"]["feedback"]["subclasses"]["praise"]
    assert problems_of(edited(duplicate)) == {
        "majors.feedback.subclasses.street_lighting": [
            "Duplicate subclass code 'street_lighting' (first at majors.utilities.subclasses.street_lighting).",
        ],
    }


@pytest.mark.parametrize(
    "change, path",
    [
        (lambda d: d["majors"]["safety"]["subclasses"]["fire_gas"].update(urgent="yes"), "majors.safety.subclasses.fire_gas.urgent"),
        (lambda d: d["majors"]["safety"]["subclasses"]["fire_gas"].update(complexity="hard"),
         "majors.safety.subclasses.fire_gas.complexity"),
        (lambda d: d["majors"]["safety"]["subclasses"]["fire_gas"].update(examples=[]), "majors.safety.subclasses.fire_gas.examples"),
        (lambda d: d["majors"]["safety"]["subclasses"]["fire_gas"].update(colour="red"), "majors.safety.subclasses.fire_gas.colour"),
        (lambda d: d["majors"]["safety"]["subclasses"].update({"Fire Gas": {}}), "majors.safety.subclasses.Fire Gas"),
        (lambda d: d["majors"]["safety"].update(subclasses={}), "majors.safety.subclasses"),
        (lambda d: d.update(urgent_keywords=["煤气 味"]), "urgent_keywords[0]"),
        (lambda d: d.update(version=0), "version"),
    ],
)
def test_each_problem_names_its_key_path(change, path):
    assert path in problems_of(edited(change))


def test_an_empty_file_names_what_is_missing():
    assert set(problems_of({})) == {"version", "departments", "majors"}
