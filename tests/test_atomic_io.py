"""The one writer every file of the project goes through."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from atomic_io import atomic_write, atomic_write_bytes, atomic_write_text


def test_writes_and_replaces(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "state.json"
    atomic_write_text(path, "old")
    atomic_write_bytes(path, b"new")
    assert path.read_text() == "new"
    assert [p.name for p in path.parent.iterdir()] == ["state.json"]


def test_failure_keeps_the_old_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    atomic_write_text(path, "old")

    def broken(tmp: Path) -> None:
        tmp.write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError):
        atomic_write(path, broken)
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]


@pytest.mark.parametrize("mode", [0o644, 0o755])
def test_mode(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "run.sh"
    atomic_write_text(path, "echo hi\n", mode=mode)
    assert stat.S_IMODE(path.stat().st_mode) == mode
