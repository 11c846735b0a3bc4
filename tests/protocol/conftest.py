"""Fixtures of the protocol tests."""

import pytest

from .descriptions import small_description


@pytest.fixture
def description(tmp_path, shared_data):
    """The parsed :data:`DATASETS` description."""
    from medsam.datasets.description import load_description

    return load_description(small_description(tmp_path, shared_data))
