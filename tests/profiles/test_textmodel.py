"""The plain-torch MiniLM encoder gives the vectors sentence-transformers gives for the
same bundled model (reference vectors recorded from sentence-transformers 6.3.0 on the
texts in the file: punctuation, accents, empty, one letter, a text past the 256-token
truncation)."""

import json
from pathlib import Path

import numpy as np

from profiles import textmodel

REFERENCE = Path(__file__).parent / "data" / "minilm_reference.json"


def test_encoder_matches_sentence_transformers_reference() -> None:
    ref = json.loads(REFERENCE.read_text())
    got = textmodel.encode(ref["texts"], batch_size=4)
    want = np.asarray(ref["vectors"], dtype=np.float32)
    assert got.shape == (len(ref["texts"]), textmodel.DIM)
    assert np.abs(got - want).max() < 1e-5
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)


def test_order_is_kept_whatever_the_batching() -> None:
    texts = ["a much longer text about garden furniture and parasols", "tv", "running shoes for trail"]
    one_by_one = np.stack([textmodel.encode([t])[0] for t in texts])
    assert np.abs(textmodel.encode(texts, batch_size=2) - one_by_one).max() < 1e-5
