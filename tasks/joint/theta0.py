"""theta0, the starting point of every stage-2 round of a seed: written once, by one stage-1 process, and
checked before a round uses it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from al.locks import wait_for_lock
from al.state import AlreadyDone, RunFolder, config_changes, theta0_lock, theta0_path
from engine.checkpoint import CheckpointError, check_theta0_origin, load_theta0, theta0_digest
from parseit import Config
from torch_io import TorchFileError, load_torch


def claim_theta0(cfg: Config, run: RunFolder) -> None:
    """Stage 1 of a seed runs in one process at a time: another one (another exp_id or exp_tag) waits here, then
    finds theta0. A theta0 that another run wrote is never replaced (stage-2 runs depend on it): with the same
    configuration the call has nothing left to do (AlreadyDone), with another one it is refused."""
    path = theta0_path(cfg)
    run.hold(theta0_lock(path), f"stage 1 of {path}")
    if not path.is_file():
        return
    writer = _writer(path)
    if writer == str(run.root):
        return   # this run's own theta0, from a round that did not finish: trained again
    changed = None if writer is None else config_changes(Path(writer) / "config.yaml", cfg, ignore=("exp_id",))
    if changed == []:
        raise AlreadyDone(f"stage 1: {path} was written by {writer} with this configuration: using it, nothing "
                          "left to do")
    how = "" if not changed else f" with other {', '.join(changed[:3])}"
    raise CheckpointError(f"{path} exists (written by {writer or 'another run'}{how}) and stage-2 runs depend on it: "
                          "delete it to train stage 1 again, or pass --path_pre_trained NEW_FILE to write another")


def _writer(path: Path) -> str | None:
    """The run folder that wrote a theta0, as recorded in it (None: not recorded, or not readable)."""
    try:
        payload = load_torch(path)
    except TorchFileError:
        return None
    meta = payload.get("meta") if isinstance(payload, dict) else None
    writer = meta.get("run") if isinstance(meta, dict) else None
    return writer if isinstance(writer, str) else None


def checked_theta0(cfg: Config, run: RunFolder, first: int) -> tuple[dict[str, Any], str]:
    """theta0 and its digest (once a stage-1 process writing it has finished), refused when it was trained for
    another dataset, split, fold or seed, or when it is not the one the run's earlier rounds started from."""
    path = theta0_path(cfg)
    wait_for_lock(theta0_lock(path), f"stage 1 of {path}")
    theta0 = load_theta0(path)
    expected = {"dataset": cfg.dataset, "split": cfg.split, "fold": cfg.fold, "wsl_method": cfg.wsl_method}
    if not cfg.path_pre_trained:  # an explicit file may serve several seeds, as in the paper's scripts
        expected["seed"] = cfg.MYSEED
    check_theta0_origin(theta0, path, expected)
    digest = theta0_digest(path)
    recorded = next((s.theta0_sha256 for s in (run.read_state(j) for j in run.done_rounds() if j < first)
                     if s.theta0_sha256), None)
    if recorded is not None and recorded != digest:
        raise CheckpointError(f"{path} is not the theta0 this run started from (sha256 {recorded[:12]}... recorded, "
                              f"{digest[:12]}... now): restore that file, or start a new run with another --exp_id")
    return theta0, digest
