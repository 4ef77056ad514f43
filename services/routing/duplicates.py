"""Similarity of two requests, to merge a new one into an open case about the
same thing. Takes the tokens from ``Classifier.tokens``."""

# Words most requests have, which would make any two look alike. Single
# characters (的, 了, 坏, 黑) are left out anyway: they say little about which
# case a request is.
STOP_WORDS = frozenset(
    "我们 你们 他们 希望 能够 帮忙 一下 麻烦 谢谢 社区 工作人员 反映 问题 解决 需要 帮助".split()
)


def _content_words(tokens):
    return {token for token in tokens if len(token) > 1 and token not in STOP_WORDS}


def text_similarity(tokens_a, tokens_b):
    """Jaccard similarity of the content words, from 0.0 to 1.0; 0.0 when
    either text has none."""
    words_a, words_b = _content_words(tokens_a), _content_words(tokens_b)
    if not words_a or not words_b:
        return 0.0
    return len(words_a & words_b) / len(words_a | words_b)


def is_near_duplicate(tokens_a, tokens_b, threshold):
    return text_similarity(tokens_a, tokens_b) >= threshold
