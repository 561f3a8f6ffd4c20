"""Running main.py in-process on the synthetic set with tiny settings, and reading its round states back."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import main

TINY = ["--yaml", "synthetic.yaml", "--max_epochs", "2", "--batch_size", "8", "--progress", "false",
        "--device", "cpu", "--deterministic", "true", "--mcdropout_t", "3", "--knn", "5"]
FOLD = Path("synthetic") / "split_0-fold_0"


def run(exp_root: Path, *args: str) -> None:
    main.main([*TINY, "--exp_root", str(exp_root), *args])


def states(exp_root: Path, exp_id: str, fold: Path = FOLD) -> list[dict]:
    """Every finished round's state.json of a run, without its wall-clock timings."""
    folder = exp_root / fold / exp_id
    out = []
    for path in sorted(folder.glob("round_[0-9][0-9][0-9]/state.json")):
        state = json.loads(path.read_text())
        state.pop("timings")
        out.append(state)
    return out


def tree(root: Path) -> dict[str, str]:
    """Checksum of every file under root: 'nothing written' means the same tree before and after."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}
