import pytest

from services.routing.classify import DEFAULT_RULES_PATH, Classifier, load_rules
from services.routing.duplicates import is_near_duplicate, text_similarity

THRESHOLD = 0.5
STREET_LIGHT = "南湖花园二区的路灯坏了"


@pytest.fixture(scope="module")
def tokens():
    return Classifier(load_rules(DEFAULT_RULES_PATH)).tokens


@pytest.mark.parametrize(
    "text_a, text_b, duplicate",
    [
        (STREET_LIGHT, "南湖花园二区路灯不亮了，晚上很黑", True),
        (STREET_LIGHT, "社区工作人员，南湖花园二区的路灯坏了，希望能够帮忙解决一下。", True),
        (STREET_LIGHT, "南湖花园二区停水了，水管好像爆了", False),
        (STREET_LIGHT, "南门小区3号楼的路灯坏了", False),
    ],
    ids=["same-lamp-other-words", "same-lamp-polite-words", "same-estate-water-outage", "other-estate-lamp"],
)
def test_near_duplicates_at_the_threshold(tokens, text_a, text_b, duplicate):
    assert is_near_duplicate(tokens(text_a), tokens(text_b), THRESHOLD) is duplicate
    assert is_near_duplicate(tokens(text_b), tokens(text_a), THRESHOLD) is duplicate


def test_identical_texts_are_fully_similar(tokens):
    assert text_similarity(tokens(STREET_LIGHT), tokens(STREET_LIGHT)) == 1.0


def test_unrelated_texts_share_nothing(tokens):
    assert text_similarity(tokens(STREET_LIGHT), tokens("汤洋村鲍老伯高龄独居，需要申报补助")) == 0.0


@pytest.mark.parametrize(
    "tokens_a, tokens_b, similarity",
    [
        (["南湖", "的", "路灯", "坏", "了"], ["路灯", "南湖"], 1.0),
        (["希望", "能够", "帮忙", "一下"], ["希望", "能够", "帮忙", "一下"], 0.0),
        ([], ["路灯"], 0.0),
        (["路灯", "不亮"], ["路灯", "停水"], 1 / 3),
    ],
    ids=["single-characters-ignored", "only-stop-words", "empty", "jaccard"],
)
def test_similarity_is_jaccard_over_content_words(tokens_a, tokens_b, similarity):
    assert text_similarity(tokens_a, tokens_b) == pytest.approx(similarity)
