"""Device selection, calibration, seeded reproducibility and artifacts of the models."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ranking import metrics
from ranking import nn as rnn
from ranking.features import Encoded, FeatureSpec

SPEC = FeatureSpec(buckets=1 << 10)


def _data(n: int, seed: int) -> tuple[Encoded, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    sparse = rng.integers(1, SPEC.buckets, (n, len(SPEC.sparse)))
    dense = rng.normal(size=(n, len(SPEC.dense))).astype(np.float32)
    seq = rng.integers(0, SPEC.buckets, (n, SPEC.seq_len))
    logit = -2.0 + 1.5 * dense[:, 0] + (sparse[:, 0] % 3 == 0) * 1.0
    click = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.float32)
    conv = (click * (rng.random(n) < 0.3)).astype(np.float32)
    enc = Encoded(sparse, dense, seq, seq, sparse[:, 3].copy(), sparse[:, 4].copy())
    return enc, click, conv


def test_device_selection() -> None:
    # auto without CUDA → CPU in fp32; with CUDA → bf16 autocast, pinned memory, large batches
    cpu = rnn.device_plan("auto", cuda_available=False)
    assert (cpu.device, cpu.autocast_dtype, cpu.pin_memory) == ("cpu", None, False)
    gpu = rnn.device_plan("auto", cuda_available=True)
    assert (gpu.device, gpu.autocast_dtype, gpu.pin_memory) == ("cuda", torch.bfloat16, True)
    assert gpu.batch_size > cpu.batch_size
    assert rnn.device_plan("cpu", cuda_available=True).device == "cpu"
    with pytest.raises(ValueError, match=rnn.ERROR_NO_CUDA):
        rnn.device_plan("cuda", cuda_available=False)
    with pytest.raises(ValueError, match=rnn.ERROR_DEVICE):
        rnn.device_plan("tpu")
    # this host has no GPU: auto resolves to the CPU
    assert rnn.device_plan("auto").device == ("cuda" if torch.cuda.is_available() else "cpu")


def test_bf16_autocast_forward_runs_on_cpu_like_the_cuda_path() -> None:
    # the CUDA plan's autocast path (bf16) exercised on the CPU: finite, close to fp32
    enc, _, _ = _data(64, 0)
    model = rnn.DinEsmm(SPEC.buckets, len(SPEC.sparse), len(SPEC.dense))
    data = rnn.to_tensors(enc, rnn.device_plan("cpu"))
    with torch.no_grad():
        ref, _ = model(*data)
        with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
            low, _ = model(*data)
    assert torch.isfinite(low.float()).all()
    assert torch.allclose(ref, low.float(), atol=0.1)


def test_the_inference_forward_equals_the_training_forward() -> None:
    # given a model with trained-looking (random, non-zero) embeddings
    enc, _, _ = _data(64, 1)
    torch.manual_seed(0)
    model = rnn.DinEsmm(SPEC.buckets, len(SPEC.sparse), len(SPEC.dense))
    with torch.no_grad():
        model.wide.weight.normal_(std=0.1)
    data = rnn.to_tensors(enc, rnn.device_plan("cpu"))
    # when the same batch goes through the training path (unique ids, gradients on) and
    # the inference path (direct lookups)
    train_ctr, train_cvr = model(*data)
    with torch.inference_mode():
        infer_ctr, infer_cvr = model(*data)
    # then the outputs are the same numbers
    assert torch.equal(train_ctr.detach(), infer_ctr) and torch.equal(train_cvr.detach(), infer_cvr)


@pytest.mark.parametrize("seq_mean", [True, False])
def test_the_numpy_serving_forward_equals_the_torch_forward(seq_mean: bool) -> None:
    # given a model with trained-looking (random, non-zero) weights everywhere
    torch.manual_seed(1)
    model = rnn.DinEsmm(SPEC.buckets, len(SPEC.sparse), len(SPEC.dense), seq_mean=seq_mean).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    kernel = rnn.DinEsmmServing(model)
    enc, _, _ = _data(70, 4)
    enc.seq_items[:, SPEC.seq_len // 2 :] = 0  # short histories
    enc.seq_items[5] = 0  # and a row without any
    enc.seq_cats = np.where(enc.seq_items != 0, enc.seq_cats, 0)
    one = Encoded(enc.sparse, enc.dense, np.repeat(enc.seq_items[:1], 70, 0), np.repeat(enc.seq_cats[:1], 70, 0),
                  enc.target_item, enc.target_cat, shared_sequence=True)  # fmt: skip
    for batch in (enc, one):  # rows with their own sequences; one shopper's request
        # when both forwards run on the batch
        with torch.inference_mode():
            ref_ctr, ref_cvr = model(*rnn.to_tensors(batch, rnn.device_plan("cpu")))
        ctr, cvr = kernel(batch)
        # then they give the same logits up to float32 rounding
        assert ctr.dtype == np.float32 and ctr.shape == (70,)
        assert np.allclose(ctr, ref_ctr.numpy(), atol=1e-5) and np.allclose(cvr, ref_cvr.numpy(), atol=1e-5)
    # and the serving predictor gives what TrainedModel.predict gives, calibrated
    trained = rnn.TrainedModel("din_esmm", SPEC, model, (0.8, -0.3), (1.1, 0.2))
    for got, want in zip(trained.serving_predictor()(one), trained.predict(one), strict=True):
        assert np.allclose(got, want, rtol=1e-5, atol=1e-9)


def test_platt_calibration_reduces_calibration_error() -> None:
    # given scores that are overconfident (logits twice the true ones, shifted)
    rng = np.random.default_rng(1)
    true_logit = rng.normal(-3, 1, 20000)
    y = (rng.random(20000) < 1 / (1 + np.exp(-true_logit))).astype(float)
    raw = 2 * true_logit + 1.0
    # when Platt scaling is fitted on half and applied to the other half
    ab = rnn.platt_fit(raw[:10000], y[:10000])
    before = metrics.calibration_error(y[10000:], rnn.sigmoid(raw[10000:]))
    after = metrics.calibration_error(y[10000:], rnn.platt_apply(raw[10000:], ab))
    # then the slope/intercept are recovered and the error drops
    assert abs(ab[0] - 0.5) < 0.05 and abs(ab[1] + 0.5) < 0.3
    assert before > 0.03 and after < 0.01 and after < before / 4


def test_training_is_seeded_reproducible_and_artifacts_round_trip() -> None:
    enc, click, conv = _data(3000, 2)
    val, vclick, _ = _data(600, 3)
    plan = rnn.device_plan("cpu")
    cfg = rnn.TrainConfig(epochs=2, seed=5, batch_size=128)
    m1, r1 = rnn.fit("din_esmm", SPEC, enc, click, conv, validation=(val, vclick), plan=plan, cfg=cfg)
    m2, _ = rnn.fit("din_esmm", SPEC, enc, click, conv, validation=(val, vclick), plan=plan, cfg=cfg)
    p1, c1 = rnn.predict_logits(m1, val)
    p2, c2 = rnn.predict_logits(m2, val)
    assert np.array_equal(p1, p2) and np.array_equal(c1, c2)
    assert r1.samples == 2 * 3000 * r1.epochs_run // 2 and r1.samples_per_second > 0
    assert metrics.auc(vclick, p1) > 0.7
    # the ESMM conversion probability never exceeds the click probability
    assert np.all(np.exp(c1) <= rnn.sigmoid(p1) + 1e-9)
    model = rnn.TrainedModel("din_esmm", SPEC, m1)
    model.calibrate(val, vclick, np.zeros_like(vclick))
    loaded = rnn.TrainedModel.loads(model.dumps())
    assert loaded.click_calibration == model.click_calibration
    assert np.allclose(loaded.predict(val)[0], model.predict(val)[0])
