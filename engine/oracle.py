"""The oracle axis: who reveals the masks a round trains on (the one dispatch point of that axis).

- simulated: the dataset's own masks, revealed the moment they are picked.
- files: a person. A round ends by writing a request (al/request.py) for the next round's pick;
  the next call reads the answers (al/answers.py), checks them whole, keeps them in its round
  folder (annotations/<id>.png) and trains on them. While no answer is there, the call says what it
  waits for and exits with EXIT_WAITING, so that a script can poll.

Region-level rounds ask for the picked regions of an image: the person draws the whole image's
mask, and only the picked regions of it are used; regions picked in different rounds are combined.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

import constants as C
from al.answers import Answer, has_answers, read_answers
from al.request import ANSWERS_DIR, PickedImage, RankedCandidate, write_request
from al.state import ANNOTATIONS_DIR, RoundState, RunFolder
from engine.context import RunData
from engine.evaluate import Inference, predict
from parseit import Config, resolve_path

REQUEST_DIR = "to_annotate"
INITIAL_DIR = "initial"


class WaitingForAnswers(Exception):
    """No answer to the last request yet; the message says which ids and where (exit EXIT_WAITING)."""


@dataclass
class Revealed:
    """What the oracle revealed for one round: provenance of what it took in now and, for a person,
    the masks of every annotated image so far (original resolution, IGNORE outside revealed regions)."""

    provenance: dict[str, dict[str, Any]]
    masks: dict[str, np.ndarray] = field(default_factory=dict)     # id -> training mask so far
    answers: dict[str, np.ndarray] = field(default_factory=dict)   # id -> whole-image answer taken in now
    seconds: float | None = None

    def mask_for(self, data: RunData, sample_id: str) -> torch.Tensor | None:
        """The training view of a person's mask, or None for the dataset's own mask."""
        if sample_id not in self.masks:
            return None
        p = data.pool.position[sample_id]
        return data.pool.mask_view(p, torch.from_numpy(self.masks[sample_id]))


def request_folder(run: RunFolder, r: int) -> Path:
    """Where the request that round r answers lies: the previous round's, or the initial set's."""
    return run.root / INITIAL_DIR / REQUEST_DIR if r == 0 else run.round_dir(r - 1) / REQUEST_DIR


def answers_source(cfg: Config, run: RunFolder, r: int, first: bool) -> Path:
    """oracle_answers answers the first round of a call; later rounds of a range read their request's
    answers/ folder (so one export is never taken for two requests)."""
    if cfg.oracle_answers and first:
        return resolve_path(cfg.oracle_answers)
    return request_folder(run, r) / ANSWERS_DIR


def asked_ids(previous: RoundState | None, labelled: Sequence[str]) -> list[str]:
    """The ids round r takes in from the oracle: L_0 at round 0, then the previous round's pick."""
    if previous is None:
        return sorted(labelled)
    return sorted(previous.selected_regions) if previous.unit == C.UNIT_REGION else sorted(previous.selected)


def reveal(cfg: Config, run: RunFolder, data: RunData, r: int, previous: RoundState | None,
           labelled: Sequence[str], regions: dict[str, torch.Tensor], first: bool) -> Revealed:
    """The masks round r trains on. A person's answers are checked whole before anything is written
    (AnswerError); with none there yet, WaitingForAnswers."""
    asked = asked_ids(previous, labelled)
    if cfg.oracle == C.ORACLE_SIMULATED:
        return Revealed({i: {"source": C.SOURCE_SIMULATED, "reference": None, "lead_time": None} for i in asked})
    source = answers_source(cfg, run, r, first)
    answers: dict[str, Answer] = {}
    if asked:
        if not has_answers(source):
            raise WaitingForAnswers(_waiting_line(run, r, asked, source))
        sizes = {i: tuple(data.train[data.pool.position[i]].image.shape[-2:]) for i in asked}
        answers = read_answers(source, asked, sizes)
    states = [run.read_state(j) for j in range(r)]
    masks = _stored_masks(run, states, regions)
    picked_regions = previous.selected_regions if previous is not None else {}
    for i, answer in answers.items():
        _combine(masks, i, answer.mask, picked_regions.get(i), regions)
    times = [a.lead_time for a in answers.values()]
    before = states[-1].annotation_seconds if states else 0.0
    seconds = None if before is None or None in times else before + sum(times)
    provenance = {i: {"source": a.source, "reference": a.reference, "lead_time": a.lead_time}
                  for i, a in sorted(answers.items())}
    return Revealed(provenance, masks, {i: a.mask for i, a in answers.items()}, seconds)


def keep_answers(partial: Path, revealed: Revealed) -> None:
    """Copy the answers the round took in into its folder, so later rounds do not need them again."""
    for i, mask in revealed.answers.items():
        RunFolder.write_mask(partial, i, mask, ANNOTATIONS_DIR)


def _waiting_line(run: RunFolder, r: int, asked: Sequence[str], source: Path) -> str:
    shown = ", ".join(asked[:5]) + (f" and {len(asked) - 5} more" if len(asked) > 5 else "")
    return (f"round {r} waits for {len(asked)} masks from a person ({shown}): annotate "
            f"{request_folder(run, r)} (index.html; or label_studio_tasks.json in Label Studio, with a Local files "
            f"storage on {run.root}), save the masks as {source}/<id>.png or pass --oracle_answers <Label Studio "
            "export.json>, then run the same command again")


def _stored_masks(run: RunFolder, states: Sequence[RoundState], regions: dict[str, torch.Tensor]
                  ) -> dict[str, np.ndarray]:
    """The masks earlier rounds took in, combined over the rounds that revealed regions of one image."""
    masks: dict[str, np.ndarray] = {}
    for j, state in enumerate(states):
        picked = states[j - 1].selected_regions if j > 0 else {}
        for i in state.annotations:
            _combine(masks, i, run.read_mask(j, i, ANNOTATIONS_DIR), picked.get(i), regions)
    return masks


def _combine(masks: dict[str, np.ndarray], sample_id: str, answer: np.ndarray, picked: Sequence[int] | None,
             regions: dict[str, torch.Tensor]) -> None:
    """A whole-image answer replaces the mask; a region answer fills in its regions only."""
    if picked is None:
        masks[sample_id] = answer.astype(np.uint8)
        return
    inside = np.isin(regions[sample_id].numpy(), np.asarray(picked))
    current = masks.get(sample_id, np.full(answer.shape, C.IGNORE, dtype=np.uint8))
    masks[sample_id] = np.where(inside, answer, current).astype(np.uint8)


def write_next_request(cfg: Config, run: RunFolder, folder: Path, r: int, data: RunData, model: Any,
                       infer: Inference, threshold: float, candidates: Sequence[str], picked: Sequence[str],
                       scores: dict[str, float], regions_picked: dict[str, list[int]],
                       regions: dict[str, torch.Tensor]) -> None:
    """The request for round r+1's pick, with the reported model's masks and uncertainty
    (r = -1: the initial labelled set, without a model)."""
    pool = data.pool
    probabilities: dict[str, np.ndarray] = {}
    positions = [pool.position[i] for i in picked]
    if model is not None and positions:
        for batch, probs, _ in predict(model, data.train_eval, infer, positions):
            for k, p in enumerate(batch.positions):
                probabilities[pool.ids[p]] = probs[k, 0].float().cpu().numpy()
    items = []
    for i in picked:
        prob = probabilities.get(i)
        inside = np.isin(regions[i].numpy(), np.asarray(regions_picked[i])) if i in regions_picked else None
        items.append(PickedImage(i, data.train[pool.position[i]].image.permute(1, 2, 0).cpu().numpy(),
                                 None if prob is None else (prob >= threshold).astype(np.uint8), prob, inside))
    paths = {rec.id: rec.image for rec in data.fold.train}
    rows = [RankedCandidate(i, paths[i], data.fold.classes[int(pool.labels[pool.position[i]])],
                            scores.get(i), i in set(picked)) for i in candidates]
    title = (f"{run.root.name}: initial labelled set" if r < 0 else
             f"{run.root.name}: round {r} picks for round {r + 1}")
    write_request(folder, title, cfg.al_type if r >= 0 else "initial random draw", rows, items,
                  resolve_path(cfg.exp_root), run.round_dir(r) / REQUEST_DIR if r >= 0 else folder)
