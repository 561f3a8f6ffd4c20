"""Fixtures shared by the test modules."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from label_studio_server import Studio, connect
from synthetic_runs import run

PH2_ROOT = Path(__file__).resolve().parents[2] / "shared" / "data" / "ph2"


@pytest.fixture(scope="session")
def ph2_root() -> Path:
    """The real PH2 set in the generic layout (150 images), read in place, never copied."""
    if not (PH2_ROOT / "labels.csv").is_file():
        pytest.skip(f"PH2 data not found at {PH2_ROOT}")
    return PH2_ROOT


@pytest.fixture(scope="session")
def studio() -> Studio:
    """A logged-in session with the Label Studio server that `bash .ci/run` starts (skips without one)."""
    return connect()


@pytest.fixture(scope="session")
def studio_root(studio: Studio) -> Path:
    """The exp_root of the runs that Label Studio serves (its local-files document root), with stage 1 done."""
    root = Path(os.environ["LABEL_STUDIO_DOCUMENT_ROOT"])
    run(root, "--al_type", "WSL", "--MYSEED", "0", "--max_epochs", "1")
    return root
