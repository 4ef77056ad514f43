"""The model `make classifier` caches is the one routing loads at start."""
import subprocess
import sys

import pytest

import services.routing.learned_classifier as learned

ROWS = [
    ("street_lighting", "train", "路灯不亮了"), ("street_lighting", "test", "门口那盏灯坏了"),
    ("public_toilets", "train", "公厕太脏了"), ("public_toilets", "test", "厕所没水冲"),
]


@pytest.fixture
def corpus(tmp_path):
    folder = tmp_path / "corpus"
    folder.mkdir()
    lines = ["\t".join(learned.CORPUS_COLUMNS), *("\t".join(row) for row in ROWS)]
    (folder / "some.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def test_a_model_trained_from_the_command_line_loads_in_another_program_without_training_again(corpus, tmp_path, monkeypatch):
    models = tmp_path / "models"
    trained = subprocess.run([sys.executable, "-m", "services.routing.learned_classifier", "--corpus", str(corpus),
                              "--model-dir", str(models), "train"], capture_output=True, text=True, timeout=300)
    assert trained.returncode == 0, trained.stderr

    def no_training(*args, **kwargs):
        raise AssertionError("the cached model was not loaded")

    monkeypatch.setattr(learned, "train", no_training)
    classifier = learned.load_or_train(models, corpus)
    assert classifier.classify("路灯坏了不亮").subclass == "street_lighting"


def test_an_unreadable_cached_model_is_trained_again(corpus, tmp_path):
    models = tmp_path / "models"
    models.mkdir()
    cached = models / f"model-{learned.fingerprint(corpus)}.joblib"
    cached.write_bytes(b"not a model")
    classifier = learned.load_or_train(models, corpus)
    assert classifier.classify("公厕太脏了").subclass == "public_toilets"
    assert cached.read_bytes() != b"not a model"
