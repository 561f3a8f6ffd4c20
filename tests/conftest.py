"""Fixtures shared by the test modules."""

from __future__ import annotations

from pathlib import Path

import pytest

PH2_ROOT = Path(__file__).resolve().parents[2] / "shared" / "data" / "ph2"


@pytest.fixture(scope="session")
def ph2_root() -> Path:
    """The real PH2 set in the generic layout (150 images), read in place, never copied."""
    if not (PH2_ROOT / "labels.csv").is_file():
        pytest.skip(f"PH2 data not found at {PH2_ROOT}")
    return PH2_ROOT
