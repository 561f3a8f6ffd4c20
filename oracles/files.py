"""The files oracle: a person answers through files.

A round ends by writing a request (al/request.py) for the next round's pick; the next call reads
the answers (al/answers.py), checks them whole, keeps them in its round folder
(annotations/<id>.png) and trains on them. While no answer is there, the call says what it waits
for and exits with EXIT_WAITING, so that a script can poll.

Answers are binary masks, or K-class label maps for the segmentation task (OracleClient.answer_classes).
Region-level rounds ask for the picked regions of an image: the person draws the whole image's
mask, and only the picked regions of it are used; regions picked in different rounds are combined.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

import constants as C
from al.answers import Answer, AnswerError, has_answers, read_answers
from al.ledger import Ledger
from al.request import ANSWERS_DIR, REQUEST_DIR
from al.state import ANNOTATIONS_DIR, RoundState, RunFolder, RunStateError
from engine.evaluate import Inference
from oracles.base import Oracle, OracleClient, Revealed, WaitingForAnswers
from parseit import resolve_path

INITIAL_DIR = "initial"


def request_folder(run: RunFolder, r: int) -> Path:
    """Where the request that round r answers lies: the previous round's, or the initial set's."""
    return run.root / INITIAL_DIR / REQUEST_DIR if r == 0 else run.round_dir(r - 1) / REQUEST_DIR


class FilesOracle(Oracle):
    name = C.ORACLE_FILES

    def answers_source(self, run: RunFolder, r: int, first: bool) -> Path:
        """oracle_answers answers the first round of a call; later rounds of a range read their request's
        answers/ folder (so one export is never taken for two requests)."""
        if self.cfg.oracle_answers and first:
            source = resolve_path(self.cfg.oracle_answers)
            if not source.exists():   # a mistyped path must not read as "still waiting" (exit 3) forever
                raise AnswerError(f"--oracle_answers {source} does not exist: pass the folder of <id>.png answers "
                                  "or the Label Studio JSON export, or drop --oracle_answers to use the request's "
                                  "answers/ folder")
            return source
        return request_folder(run, r) / ANSWERS_DIR

    def collect(self, run: RunFolder, r: int, asked: Sequence[str], first: bool, client: OracleClient
                ) -> dict[str, Answer]:
        """The answers to round r's request, checked whole (AnswerError); WaitingForAnswers while there are none.
        The one step that another way of answering (a tool's API) replaces."""
        source = self.answers_source(run, r, first)
        if not has_answers(source):
            raise WaitingForAnswers(_waiting_line(run, r, asked, source, answer_kind(client)))
        return read_answers(source, asked, client.answer_sizes(asked), client.answer_classes())

    def reveal(self, run: RunFolder, r: int, ledger: Ledger, first: bool, client: OracleClient) -> Revealed:
        """The masks round r trains on. A person's answers are checked whole before anything is written
        (AnswerError); with none there yet, WaitingForAnswers."""
        asked = ledger.pending
        answers = self.collect(run, r, asked, first, client) if asked else {}
        label_maps = client.answer_classes() is not None
        states = [run.read_state(j) for j in range(r)]
        masks = _stored_masks(run, states, client.regions, label_maps)
        picked_regions = states[-1].selected_regions if states else {}
        for i, answer in answers.items():
            _combine(masks, i, answer.mask, picked_regions.get(i), client.regions)
        times = [a.lead_time for a in answers.values()]
        before = states[-1].annotation_seconds if states else 0.0
        seconds = None if before is None or None in times else before + sum(times)
        provenance = {i: {"source": a.source, "reference": a.reference, "lead_time": a.lead_time}
                      for i, a in sorted(answers.items())}
        return Revealed(provenance, masks, {i: a.mask for i, a in answers.items()}, seconds, label_maps)

    def check_finished(self, run: RunFolder, r: int) -> None:
        """Answers given to a finished round would be ignored in silence: say how to correct the round instead."""
        if self.cfg.oracle_answers:
            raise RunStateError(f"round {r} of {run.root} already finished and took in its answers then: to "
                                f"correct them, pass the corrected answers with --redo_round {r} (round {r} "
                                "and later rounds are moved to superseded/, nothing is deleted)")

    def keep(self, partial: Path, revealed: Revealed) -> None:
        for i, mask in revealed.answers.items():
            RunFolder.write_mask(partial, i, mask, ANNOTATIONS_DIR, revealed.label_maps)

    def request(self, run: RunFolder, partial: Path, r: int, work: Any, client: OracleClient,
                infer: Inference) -> None:
        if work.pick.selected and not work.pick.final:
            client.write_request(partial / REQUEST_DIR, r, work, work.ledger, infer)

    def request_initial(self, run: RunFolder, ledger: Ledger, client: OracleClient, infer: Inference) -> None:
        folder = request_folder(run, 0)
        if not (folder / "index.html").is_file():
            client.write_request(folder, -1, None, ledger, infer)


def answer_kind(client: OracleClient) -> str:
    """What a person answers with, in words."""
    return "masks" if client.answer_classes() is None else "label maps"


def listed(ids: Sequence[str]) -> str:
    """The first ids of a list, for a one-line message."""
    return ", ".join(ids[:5]) + (f" and {len(ids) - 5} more" if len(ids) > 5 else "")


def _waiting_line(run: RunFolder, r: int, asked: Sequence[str], source: Path, what: str) -> str:
    return (f"round {r} waits for {len(asked)} {what} from a person ({listed(asked)}): annotate "
            f"{request_folder(run, r)} (index.html; or label_studio_tasks.json in Label Studio, with a Local files "
            f"storage on {run.root}), save the {what} as {source}/<id>.png or pass --oracle_answers <Label Studio "
            "export.json>, then run the same command again")


def _stored_masks(run: RunFolder, states: Sequence[RoundState], regions: dict[str, torch.Tensor],
                  label_maps: bool) -> dict[str, np.ndarray]:
    """The masks (or label maps) earlier rounds took in, combined over the rounds that revealed regions of one image."""
    masks: dict[str, np.ndarray] = {}
    for j, state in enumerate(states):
        picked = states[j - 1].selected_regions if j > 0 else {}
        for i in state.annotations:
            _combine(masks, i, run.read_mask(j, i, ANNOTATIONS_DIR, label_maps), picked.get(i), regions)
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
