"""What every task with pixel labels hands a person: the picked images with the model's answer, its
uncertainty and, at region level, the picked regions; and the ranking of every candidate. The tasks
say what an image's picture is (al/request.py writes the files)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from al.request import REQUEST_DIR, PickedImage, RankedCandidate, write_request
from al.state import RunFolder
from parseit import Config, resolve_path

# (id, the picked regions (H, W) bool or None: the whole image) -> what the request shows of the image.
Picture = Callable[[str, np.ndarray | None], PickedImage]


def picked_regions(regions: dict[str, torch.Tensor], regions_picked: dict[str, list[int]], sample_id: str
                   ) -> np.ndarray | None:
    """(H, W) bool: the pixels of the regions picked in an image; None when the whole image is asked for."""
    if sample_id not in regions_picked:
        return None
    return np.isin(regions[sample_id].numpy(), np.asarray(regions_picked[sample_id]))


def write_pick_request(cfg: Config, run: RunFolder, folder: Path, r: int, rows: Sequence[RankedCandidate],
                       picture: Picture, picked: Sequence[str], regions: dict[str, torch.Tensor],
                       regions_picked: dict[str, list[int]], classes: Sequence[str] | None = None) -> None:
    """The request for round r+1's pick (r = -1: the initial labelled set, drawn before any model)."""
    items = [picture(i, picked_regions(regions, regions_picked, i)) for i in picked]
    title = (f"{run.root.name}: initial labelled set" if r < 0 else
             f"{run.root.name}: round {r} picks for round {r + 1}")
    write_request(folder, title, cfg.al_type if r >= 0 else "initial random draw", rows, items,
                  resolve_path(cfg.exp_root), run.round_dir(r) / REQUEST_DIR if r >= 0 else folder, classes)
