import pytest
import yaml
from marshmallow import ValidationError

from services.routing.classify import DEFAULT_RULES_PATH, Classification, Classifier, load_rules

CATEGORY_IDS = [
    "street_lighting", "water_supply", "sanitation", "roads", "dispute", "welfare",
    "safety", "housing", "health", "public_order", "other",
]


@pytest.fixture(scope="module")
def classifier():
    return Classifier(load_rules(DEFAULT_RULES_PATH))


@pytest.mark.parametrize(
    "text, category, complexity, urgent",
    [
        ("社区工作人员，南湖花园二区的路灯因为海葵台风受损，希望能够帮忙解决一下。", "street_lighting", "simple", False),
        ("南湖花园二区路灯不亮了，晚上很黑", "street_lighting", "simple", False),
        ("汤洋村鲍老伯高龄独居，儿子刚突发疾病过世，生活困难，需要帮助申报补助。", "welfare", "complex", False),
        ("小区停水两天了，自来水一直没来", "water_supply", "simple", False),
        ("家里水管爆了，到处漏水", "water_supply", "simple", False),
        ("垃圾好几天没人清运了，很臭", "sanitation", "simple", False),
        ("村口道路坑坑洼洼，下雨全是积水", "roads", "simple", False),
        ("楼上邻居半夜噪音太大，吵得睡不着", "dispute", "complex", False),
        ("小区电梯坏了三天，物业不管", "housing", "simple", False),
        ("想给孩子接种疫苗，卫生院几点上班", "health", "simple", False),
        ("有人冒充公检法打电话诈骗老人", "public_order", "simple", False),
        ("3号楼着火了，浓烟很大", "safety", "complex", True),
        ("厨房煤气泄漏了，有很大的味道", "safety", "complex", True),
        ("老人在河边落水了，快来人", "other", "simple", True),
        ("请问办事大厅几点开门", "other", "simple", False),
    ],
)
def test_classifies_residents_requests(classifier, text, category, complexity, urgent):
    result = classifier.classify(text)
    assert (result.category, result.complexity, result.urgent) == (category, complexity, urgent)


def test_lists_the_keywords_behind_the_result_in_text_order(classifier):
    result = classifier.classify("汤洋村鲍老伯高龄独居，生活困难，需要申报补助，多次反映了")
    assert result == Classification("welfare", "complex", False, ("高龄", "独居", "困难", "补助", "多次反映"))


def test_complex_keyword_makes_a_simple_category_complex(classifier):
    result = classifier.classify("门口路灯坏了，多次反映没人管")
    assert (result.category, result.complexity) == ("street_lighting", "complex")


def test_tie_goes_to_the_category_listed_first(classifier):
    # 灯 (street_lighting) and 楼道 (housing) score one each.
    assert classifier.classify("楼道的灯坏了").category == "street_lighting"


@pytest.mark.parametrize(
    "text, hint, category",
    [
        ("请尽快处理，谢谢", "roads", "roads"),
        ("请尽快处理，谢谢", "other", "other"),
        ("小区停水两天了", "roads", "water_supply"),
        ("请尽快处理，谢谢", "路灯", "other"),
        ("请尽快处理，谢谢", None, "other"),
    ],
    ids=["used-when-nothing-matches", "other-is-a-known-id", "ignored-when-text-matches", "unknown-hint-ignored", "no-hint"],
)
def test_hinted_category_only_fills_in_when_the_text_matches_nothing(classifier, text, hint, category):
    assert classifier.classify(text, hinted_category=hint).category == category


@pytest.mark.parametrize(
    "text, inside_a_word",
    [
        ("春节挂灯笼，请大家来登记", "灯"),
        ("社区美食节有臭豆腐", "臭"),
        ("保护老人不受伤害", "受伤"),
    ],
)
def test_keyword_inside_another_word_does_not_match(classifier, text, inside_a_word):
    assert inside_a_word in text  # a substring match would have fired
    result = classifier.classify(text)
    assert (result.category, result.urgent, result.matched) == ("other", False, ())


def test_keywords_segment_as_one_token(classifier):
    # Without the rules jieba reads 路/灯不亮 and 多次/反映.
    assert classifier.tokens("路灯不亮，多次反映") == ["路灯", "不亮", "多次反映"]


def test_tokens_drop_punctuation_and_whitespace(classifier):
    assert classifier.tokens("停水了！ 怎么办？\n") == ["停水", "了", "怎么办"]


def test_shipped_rules_have_the_expected_categories():
    rules = load_rules(DEFAULT_RULES_PATH)
    assert list(rules.categories) == CATEGORY_IDS
    assert rules.default_category == "other"
    assert rules.categories["other"].keywords == ()
    assert all(len(category.keywords) >= 10 for id_, category in rules.categories.items() if id_ != "other")
    complex_ids = {id_ for id_, category in rules.categories.items() if category.complexity == "complex"}
    assert complex_ids == {"welfare", "dispute", "safety"}


@pytest.fixture
def shipped():
    with open(DEFAULT_RULES_PATH, encoding="utf-8") as file:
        return yaml.safe_load(file)


def write_rules(tmp_path, rules):
    path = tmp_path / "rules.yml"
    path.write_text(yaml.safe_dump(rules, allow_unicode=True), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    "change, key_path",
    [
        (lambda rules: rules["categories"]["roads"].update(complexity="hard"), ["categories", "roads", "complexity"]),
        (lambda rules: rules["categories"]["roads"].update(owner="交通局"), ["categories", "roads", "owner"]),
        (lambda rules: rules["categories"]["roads"].pop("name"), ["categories", "roads", "name"]),
        (lambda rules: rules["categories"]["roads"]["keywords"].append(""), ["categories", "roads", "keywords"]),
        (lambda rules: rules["categories"]["roads"]["keywords"].append("路 面"), ["categories", "roads", "keywords"]),
        (lambda rules: rules["categories"].update({"Road Works": {"name": "道路", "complexity": "simple"}}), ["categories", "Road Works"]),
        (lambda rules: rules.update(priority="high"), ["priority"]),
        (lambda rules: rules.update(default_category="misc"), ["default_category"]),
        (lambda rules: rules["urgent_keywords"].append(119), ["urgent_keywords"]),
        (lambda rules: rules.update(version=2), ["version"]),
        (lambda rules: rules.update(categories={}), ["categories"]),
    ],
    ids=[
        "bad-complexity", "unknown-category-key", "missing-name", "empty-keyword", "keyword-with-space",
        "bad-category-id", "unknown-top-level-key", "unknown-default-category", "number-keyword",
        "unknown-version", "no-categories",
    ],
)
def test_bad_rule_file_raises_naming_the_key(tmp_path, shipped, change, key_path):
    change(shipped)
    with pytest.raises(ValidationError) as raised:
        load_rules(write_rules(tmp_path, shipped))
    messages = raised.value.messages
    for key in key_path:
        assert key in messages, raised.value.messages
        messages = messages[key]


def test_custom_rule_file_drives_the_classifier(tmp_path):
    rules = {
        "version": 1,
        "categories": {
            "livestock": {"name": "畜牧", "keywords": ["生猪", "养殖场"], "complexity": "complex"},
            "other": {"name": "其他", "complexity": "simple"},
        },
        "urgent_keywords": ["疫病"],
        "default_category": "other",
    }
    classifier = Classifier(load_rules(write_rules(tmp_path, rules)))
    assert classifier.classify("村里养殖场的生猪可能有疫病") == Classification("livestock", "complex", True, ("养殖场", "生猪", "疫病"))
