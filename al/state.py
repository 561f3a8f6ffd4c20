"""The run folder: what each round decided, written so that a crash never leaves half a round.

Layout of one fold's experiments:

    <exp_root>/<debug_subfolder>/<dataset>/split_<s>-fold_<f>/
        theta0/seed_<s>.pt     stage-1 checkpoint written by WSL, read by every stage-2 run of that seed
        knn_cache/             Label_prop colour histograms (shared by seeds and rounds)
        <exp_id>/              one run (one method and one seed, every round):
        config.yaml            resolved configuration of the run (later calls must agree with it)
        lock                   held (flock) by the process working on the run; holds its pid
        round_000/state.json   everything round 0 decided and measured (see RoundState)
        round_000/pseudo_masks/<id>.png   pseudo-masks that round r+1 trains on (Label_prop)
        round_001/...
        round_003.partial/     a round in progress; removed when the round is started again

A round is written into `round_<r>.partial/` and renamed to `round_<r>/` once complete, so a
round folder exists if and only if the round finished. Rerunning a finished round is a no-op;
an interrupted one starts again cleanly.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from atomic_io import atomic_write_text
from parseit import Config, resolve_path

STATE_FILE = "state.json"
MASKS_DIR = "pseudo_masks"


def experiment_dir(cfg: Config) -> Path:
    """<exp_root>/<debug_subfolder>/<dataset>/split_<s>-fold_<f>: every run of one fold, theta0 and caches."""
    base = resolve_path(cfg.exp_root)
    if cfg.debug_subfolder:
        base = base / cfg.debug_subfolder
    return base / cfg.dataset / f"split_{cfg.split}-fold_{cfg.fold}"


def run_dir(cfg: Config) -> Path:
    """The folder of one run: exp_id, by default <al_type>-seed_<MYSEED>."""
    return experiment_dir(cfg) / (cfg.exp_id or f"{cfg.al_type}-seed_{cfg.MYSEED}")


def theta0_path(cfg: Config) -> Path:
    """Where stage 1 writes theta0 and stage 2 reads it (one per dataset, split, fold and seed)."""
    if cfg.path_pre_trained:
        return resolve_path(cfg.path_pre_trained)
    return experiment_dir(cfg) / "theta0" / f"seed_{cfg.MYSEED}.pt"


class RunStateError(ValueError):
    """The run folder is inconsistent with the request (one line naming the problem and the fix)."""


class RunLockedError(RuntimeError):
    """Another process works on the same run folder."""


def atomic_write_json(path: Path, payload: Any) -> None:
    atomic_write_text(path, json.dumps(payload, indent=1, sort_keys=False) + "\n")


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise RunStateError(f"{path} is corrupt ({exc.msg}): delete that round's folder and run the round again") \
            from None


class RunFolder:
    """One run's folder, locked for the lifetime of the object (released on close or process exit)."""

    def __init__(self, root: Path):
        self.root = root
        self._lock_handle: Any = None

    def lock(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        handle = open(self.root / "lock", "a+")  # noqa: SIM115 (held open: the lock lives as long as it)
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            pid = handle.read().strip() or "unknown"
            handle.close()
            raise RunLockedError(f"run folder {self.root} is in use by another process (pid {pid}): "
                                 "wait for it to finish or use another --exp_id") from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        self._lock_handle = handle

    def close(self) -> None:
        if self._lock_handle is not None:
            fcntl.flock(self._lock_handle.fileno(), fcntl.LOCK_UN)
            self._lock_handle.close()
            self._lock_handle = None

    def __enter__(self) -> RunFolder:  # noqa: PYI034 (Python 3.10 has no typing.Self)
        self.lock()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # Rounds -------------------------------------------------------------------------------
    def round_dir(self, r: int) -> Path:
        return self.root / f"round_{r:03d}"

    def is_done(self, r: int) -> bool:
        return (self.round_dir(r) / STATE_FILE).is_file()

    def done_rounds(self) -> list[int]:
        return sorted(int(p.name.split("_")[1]) for p in self.root.glob("round_[0-9][0-9][0-9]")
                      if (p / STATE_FILE).is_file())

    def read_state(self, r: int) -> dict[str, Any]:
        path = self.round_dir(r) / STATE_FILE
        if not path.is_file():
            raise RunStateError(f"round {r} of {self.root} has not finished: run it first (--al_it {r})")
        return read_json(path)

    def begin_round(self, r: int) -> Path:
        """A clean scratch folder for round r (whatever an interrupted attempt left is removed)."""
        partial = self.round_dir(r).with_name(self.round_dir(r).name + ".partial")
        if partial.exists():
            shutil.rmtree(partial)
        partial.mkdir(parents=True)
        return partial

    def finish_round(self, r: int, partial: Path, state: Mapping[str, Any]) -> None:
        """Write the state last, then publish the folder with one rename."""
        atomic_write_json(partial / STATE_FILE, state)
        final = self.round_dir(r)
        if final.exists():
            raise RunStateError(f"round {r} already finished in {self.root}: delete {final} to run it again")
        os.replace(partial, final)

    # Pseudo-masks ---------------------------------------------------------------------------
    @staticmethod
    def write_mask(folder: Path, sample_id: str, mask: np.ndarray) -> None:
        path = folder / MASKS_DIR / f"{sample_id}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray((mask > 0).astype(np.uint8) * 255).save(path, format="PNG")

    def read_mask(self, r: int, sample_id: str) -> np.ndarray:
        path = self.round_dir(r) / MASKS_DIR / f"{sample_id}.png"
        if not path.is_file():
            raise RunStateError(f"pseudo-mask {path} is missing: delete {self.round_dir(r)} and run round {r} again")
        return (np.asarray(Image.open(path)) > 127).astype(np.uint8)
