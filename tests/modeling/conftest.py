"""Fixtures for the model tests: Meta's reference implementation and a way to
give every parameter non-trivial random values."""

from __future__ import annotations

import pytest
import torch

from reference_sam import load_reference


@pytest.fixture(scope="session")
def reference():
    """``(modeling, build_sam)`` modules of segment-anything 1.0."""
    return load_reference()


def randomize_(module: torch.nn.Module, seed: int = 0, std: float = 0.05) -> torch.nn.Module:
    """Add Gaussian noise to every floating parameter and buffer in place, so that
    zero-initialised tensors (relative and absolute position embeddings, biases)
    take part in the comparison. Returns ``module``."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for tensor in [*module.parameters(), *module.buffers()]:
            if tensor.is_floating_point():
                tensor.add_(torch.randn(tensor.shape, generator=generator) * std)
    return module


@pytest.fixture(scope="session")
def randomize():
    return randomize_
