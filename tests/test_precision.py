"""Inference precision: names, the autocast context, and the predictor in each mode."""

from pathlib import Path

import numpy as np
import pytest
import torch

from medsam.errors import InputError
from medsam.precision import PRECISIONS, native_bf16, precision_context, resolve_precision


def test_auto_is_exact_and_names_are_checked():
    cpu = torch.device("cpu")
    assert resolve_precision("auto", cpu) == "exact"  # bf16 fails the per-image guard
    assert resolve_precision("exact", cpu) == "exact"
    assert resolve_precision("bf16", cpu) == "bf16"
    with pytest.raises(InputError, match="precision must be one of auto, exact, bf16, got 'fp16'"):
        resolve_precision("fp16", cpu)
    assert PRECISIONS == ("auto", "exact", "bf16")


def test_native_bf16_only_on_cpus_and_gpus_that_have_it():
    assert native_bf16(torch.device("meta")) is False
    cpuinfo = Path("/proc/cpuinfo")
    flags = cpuinfo.read_text() if cpuinfo.exists() else ""
    assert native_bf16(torch.device("cpu")) == ("avx512_bf16" in flags or "amx_bf16" in flags)


def test_precision_context_runs_matrix_products_in_bf16_only_when_asked():
    a = torch.randn(8, 8)
    cpu = torch.device("cpu")
    with precision_context("exact", cpu):
        assert (a @ a).dtype == torch.float32
    with precision_context("bf16", cpu):
        assert (a @ a).dtype == torch.bfloat16


def test_predictor_bf16_keeps_a_float32_embedding_close_to_exact(lite_medsam_model):
    from medsam.predictor import MedSAMPredictor

    image = np.random.default_rng(0).integers(0, 256, (80, 100)).astype(np.uint8)
    exact = MedSAMPredictor(lite_medsam_model, precision="exact")
    fast = MedSAMPredictor(lite_medsam_model, precision="bf16")
    assert (exact.precision, fast.precision) == ("exact", "bf16")
    assert MedSAMPredictor(lite_medsam_model).precision == "exact"
    exact.set_image(image)
    fast.set_image(image)
    e, f = exact.get_image_embedding(), fast.get_image_embedding()
    assert f.dtype == torch.float32 and not torch.equal(e, f)
    assert ((f - e).norm() / e.norm()).item() < 0.1
    masks, scores, logits = fast.predict(boxes=[10, 10, 60, 50])
    assert masks.shape == (1, 80, 100) and logits.dtype == np.float32
