"""theta0, the starting point of every stage-2 round of a seed, checked before a round uses it."""

from __future__ import annotations

from typing import Any

from al.state import RunFolder, theta0_path
from engine.checkpoint import CheckpointError, check_theta0_origin, load_theta0, theta0_digest
from parseit import Config


def checked_theta0(cfg: Config, run: RunFolder, first: int) -> tuple[dict[str, Any], str]:
    """theta0 and its digest, refused when it was trained for another dataset, split, fold or seed, or
    when it is not the one the run's earlier rounds started from."""
    path = theta0_path(cfg)
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
