"""A finished round's model file, `round_<r>/model.pt`: what predict.py, the qualitative figures and a warm start
read back.

The file holds plain tensors, numbers and strings only, so that `torch.load(..., weights_only=True)` reads it
without running pickled code:

    format, version       "round model", FORMAT_VERSION
    task, round, method, seed, dataset
    members               the round's weights (state dicts on the CPU), the reporting model first; one unless
                          the strategy trains several (a deep ensemble's members). The joint task's stage 2
                          trains the segmentation head on a frozen theta0: its members hold the tensors that
                          differ from theta0 only (6 MB instead of 103 MB at PH2 size), and `extra` names
                          theta0's file and sha256, which predicting checks
    reporting_member      which member (by its training index) reports the round's metrics
    config                the run's resolved configuration (the model is rebuilt from it)
    classes               class names in label order
    metrics               the round's metrics as state.json records them
    extra                 what the task needs to predict as the round measured: the joint task's threshold
                          and theta0 digest, the input size and channels of the classification task, ...

How many rounds keep their file is `keep_models` (al/state.py prunes the others once a round finishes).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import Tensor

from parseit import Config
from torch_io import TorchFileError, load_torch, save_torch

FORMAT = "round model"
FORMAT_VERSION = 1


class RoundModelError(ValueError):
    """A round model that is missing, damaged or not one of this project (one line naming the file and the fix)."""


@dataclass(frozen=True)
class RoundModel:
    """A round model file read back."""

    path: Path
    task: str
    round: int
    members: list[dict[str, Any]]
    reporting_member: int
    config: Config
    classes: list[str]
    metrics: dict[str, Any]
    extra: dict[str, Any]

    @property
    def weights(self) -> dict[str, Any]:
        """The reporting model's state dict."""
        return self.members[0]


def save_round_model(path: Path, members: Sequence[Mapping[str, Tensor]], reporting_member: int, config: Config,
                     classes: Sequence[str], summary: Mapping[str, Any], extra: Mapping[str, Any]) -> None:
    """Written whole or not at all (a crash leaves the previous file, or none). Numbers pass through JSON, so that
    numpy scalars become the plain floats state.json holds (weights_only reads no numpy type)."""
    summary, extra = json.loads(json.dumps(summary)), json.loads(json.dumps(extra))
    save_torch(path, {"format": FORMAT, "version": FORMAT_VERSION, **summary,
                      "members": [{k: v.detach().cpu() for k, v in m.items()} for m in members],
                      "reporting_member": int(reporting_member), "config": config.to_dict(),
                      "classes": list(classes), "extra": extra})


def load_round_model(path: Path) -> RoundModel:
    """The file's content; RoundModelError when it is missing, damaged or of another kind."""
    if not path.is_file():
        raise RoundModelError(f"{path} not found: that round kept no model (keep_models keeps the last round's by "
                              "default; run the round again with --keep_models all to keep every round's)")
    try:
        payload = load_torch(path)
    except TorchFileError as error:
        raise RoundModelError(f"{error}: run that round again to write it") from None
    if not (isinstance(payload, dict) and payload.get("format") == FORMAT):
        raise RoundModelError(f"{path} is not a round model of this project: pass the model.pt of a round folder")
    if payload.get("version") != FORMAT_VERSION:
        raise RoundModelError(f"{path} has format version {payload.get('version')!r}, this code reads "
                              f"{FORMAT_VERSION}: use the version of the code that wrote it")
    missing = [k for k in ("task", "round", "members", "reporting_member", "config", "classes", "metrics", "extra")
               if k not in payload]
    if missing or not payload["members"]:
        raise RoundModelError(f"{path} is an incomplete round model ({', '.join(missing) or 'no weights'} missing): "
                              "run that round again to write it")
    return RoundModel(path=path, task=payload["task"], round=payload["round"], members=payload["members"],
                      reporting_member=payload["reporting_member"], config=Config(payload["config"]),
                      classes=payload["classes"], metrics=payload["metrics"], extra=payload["extra"])
