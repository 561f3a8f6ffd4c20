"""What a task is: what is learned and measured, and what the oracle's answers are.

A round (main.play_round) asks its task, in the order of Algorithm 1: train the round's model(s)
on what is labelled, evaluate, score the pool and select with the strategy, pseudo-label where the
method does, and publish the round's state. The task keeps what one round computed in a
`RoundWork` (a subclass of it when the task has more), so each step reads what the previous ones
left there.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

import constants as C
from al.ledger import Ledger
from al.methods import Method
from al.state import MODEL_FILE, BestEpoch, RoundState, RunFolder, RunStateError
from al.strategies import Strategy
from al.strategies.base import LOSS_MODULE
from engine.evaluate import Inference
from engine.prediction import Predictor
from engine.round_model import RoundModel, RoundModelError, save_round_model
from engine.runtime import cpu_generator, derived_seed, seed_everything
from engine.train import LossPredictionTraining
from engine.training_log import MemberLog, TrainingLog
from oracles.base import Revealed
from parseit import Config

# Purposes of the derived seeds of one round (engine.runtime.derived_seed).
AUGMENT, SELECT, MC, TRAIN = 1, 2, 3, 4


class Clock:
    """Wall time per phase of a round (train / validate / score / select / pseudo_label / write)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)

    @contextmanager
    def __call__(self, phase: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[phase] += time.perf_counter() - start

    def add(self, phase: str, seconds: float) -> None:
        self.seconds[phase] += seconds


@dataclass
class Pick:
    """The oracle's next pick: ids in selection order, the score of every scored candidate, and for
    region-level rounds the regions of each picked image."""

    selected: list[str] = field(default_factory=list)
    scores: dict[str, float] = field(default_factory=dict)
    regions: dict[str, list[int]] = field(default_factory=dict)
    exhausted: bool = False          # nothing is left to annotate after this pick
    stop_reason: str | None = None   # why the study stops after this round (constants.STOP_*)
    final: bool = False              # a single-round method: no later round takes this pick in


@dataclass
class RoundWork:
    """What one round computed so far."""

    r: int
    ledger: Ledger
    revealed: Revealed
    previous: RoundState | None
    members: list[Any] = field(default_factory=list)    # the round's model(s), the reporting one first
    best: Any = None                                    # how the reported model was chosen (task's own type)
    history: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    pick: Pick = field(default_factory=Pick)


class Task:
    """Base class of the tasks of tasks.TASKS; one instance serves every round of one process."""

    name: str
    asks_oracle = True   # stage 1 of the joint task learns from image labels only
    valid_metric: str    # the validation measure that selects the model (training_log.csv: valid_<metric>)

    def __init__(self, cfg: Config, method: Method, strategy: Strategy | None, device: torch.device) -> None:
        self.cfg, self.method, self.strategy, self.device = cfg, method, strategy, device
        self.run: RunFolder | None = None
        self.regions: dict[str, torch.Tensor] = {}

    # Before the first round: everything that can refuse the call does so before anything is written.
    def prepare(self, run: RunFolder, first: int) -> None:
        """Load the data and the model's starting point, and check the run's earlier rounds against them."""
        self.run = run
        self.load(run, first)
        previous = run.read_state(first - 1) if first > 0 else None
        ledger = self.ledger(previous)
        problem = None if previous is None else ledger.problem(previous)
        if problem:
            raise RunStateError(f"{run.round_dir(first - 1) / 'state.json'} {problem}: delete that round's folder and "
                                "run the round again")
        if self.strategy is not None:
            self.check_strategy(ledger)

    def load(self, run: RunFolder, first: int) -> None:
        raise NotImplementedError

    def check_strategy(self, ledger: Ledger) -> None:
        """The strategy's own preconditions on the labelled set and the feature size."""

    # The labelled/pool bookkeeping.
    def ids(self) -> list[str]:
        raise NotImplementedError

    def initial_labelled(self) -> list[str]:
        raise NotImplementedError

    def ledger(self, previous: RoundState | None) -> Ledger:
        return Ledger.for_round(self.ids(), previous, self.method.single_round, self.initial_labelled)

    # One round, in the order of Algorithm 1.
    def training_log(self, folder: Path, r: int) -> TrainingLog:
        """Where round r's training writes its epochs: `folder` is the round's partial folder."""
        return TrainingLog(folder, r, self.valid_metric, self.cfg.tensorboard)

    def train(self, work: RoundWork, infer: Inference, clock: Clock, log: TrainingLog) -> None:
        raise NotImplementedError

    def evaluate(self, work: RoundWork, infer: Inference, clock: Clock) -> None:
        raise NotImplementedError

    def select(self, work: RoundWork, infer: Inference, clock: Clock) -> None:
        """The strategy's pick for the next round (none for single-round methods)."""

    def pseudo_label(self, work: RoundWork, infer: Inference, clock: Clock) -> None:
        """Labels the model gives to samples the oracle did not annotate (none unless the method does)."""

    def publish(self, work: RoundWork, partial: Path, clock: Clock) -> RoundState:
        """The round's files in its partial folder, and its state."""
        raise NotImplementedError

    def new_work(self, r: int, ledger: Ledger, revealed: Revealed, previous: RoundState | None) -> RoundWork:
        return RoundWork(r, ledger, revealed, previous)

    # The round's model, kept for predict.py, the qualitative figures and a warm start.
    def save_model(self, work: RoundWork, partial: Path) -> None:
        """model.pt in the round's folder: its model(s), the reporting one first, and what predicting needs."""
        summary = {"task": self.name, "round": work.r, "method": self.cfg.al_type, "seed": self.cfg.MYSEED,
                   "dataset": self.cfg.dataset, "metrics": work.metrics}
        save_round_model(partial / MODEL_FILE, [self.kept_weights(m) for m in work.members], work.best.member,
                         self.cfg, self.class_names(), summary, self.model_extra(work))

    def prune_models(self, run: RunFolder, r: int) -> None:
        """After round r finished: the model files keep_models does not keep go."""
        run.prune_models(self.cfg.keep_models, r, next_round_reads=self.warm_starts)

    @property
    def warm_starts(self) -> bool:
        """Whether a round starts from the previous round's model file."""
        return False

    def class_names(self) -> list[str]:
        raise NotImplementedError

    def kept_weights(self, model: nn.Module) -> dict[str, torch.Tensor]:
        """The weights a round model file holds of one member (all of them unless the task says otherwise)."""
        return model.state_dict()

    def model_extra(self, work: RoundWork) -> dict[str, Any]:
        """What predicting needs beyond the weights and the configuration."""
        return {}

    def predictor(self, model: RoundModel, infer: Inference) -> Predictor:
        """The round model as a function of new images (predict.py)."""
        raise RoundModelError(f"{model.path}: the {self.name} task has no predictor")

    # What a person annotates.
    def answer_sizes(self, ids: list[str]) -> dict[str, tuple[int, int]]:
        raise NotImplementedError(f"the {self.name} task has no person oracle")

    def answer_classes(self) -> tuple[str, ...] | None:
        """The classes of the label maps a person answers with; None: binary masks."""
        return None

    def write_request(self, folder: Path, r: int, work: RoundWork | None, ledger: Ledger, infer: Inference) -> None:
        raise NotImplementedError(f"the {self.name} task has no person oracle")

    def round_line(self, state: RoundState) -> str:
        raise NotImplementedError


def loss_prediction_training(cfg: Config, strategy: Strategy | None) -> LossPredictionTraining | None:
    """LL4AL's joint training of the loss-prediction module, for the strategies that need one."""
    if strategy is None or LOSS_MODULE not in strategy.required():
        return None
    return LossPredictionTraining(weight=cfg.ll4al_weight, margin=cfg.ll4al_margin,
                                  detach_epoch=cfg.ll4al_detach_epoch)


def fit_members(work: RoundWork, n_models: int, cfg: Config, infer: Inference, clock: Clock,
                build: Callable[[int], nn.Module],
                fit: Callable[[nn.Module, torch.Generator, str, MemberLog], list[float]],
                validate: Callable[[nn.Module], dict[str, Any]], key: str, log: TrainingLog) -> None:
    """Members 0..n-1 of the round, each from its own seed (a deep ensemble's differ by their seeds only):
    built, fitted and validated; the best on validation `key` reports (first in work.members; ties: the smaller
    index), and its validation metrics are the round's. Each member's epochs go to `log`, its validation
    score on its last epoch's row."""
    valid = []
    for m in range(n_models):
        extra = (m,) if m else ()
        seed_everything(derived_seed(cfg.MYSEED, work.r, 0, TRAIN, *extra))
        model = build(m).to(infer.device)
        if infer.channels_last and infer.device.type == "cuda":
            model = model.to(memory_format=torch.channels_last)
        with clock("train"):
            losses = fit(model, cpu_generator(derived_seed(cfg.MYSEED, work.r, 0, AUGMENT, *extra)),
                         f"{cfg.al_type} r{work.r}" + (f" m{m}" if m else ""), log.member(0, m))
        with clock("validate"):
            valid.append(validate(model))
        log.member(0, m).validated(valid[-1][key])
        work.members.append(model)
        work.history["cycle0" if m == 0 else f"cycle0_member{m}"] = {"loss": losses, "valid": [valid[-1][key]]}
    best = max(range(n_models), key=lambda m: (valid[m][key] or 0.0, -m))
    work.members.insert(0, work.members.pop(best))
    work.best = BestEpoch(epoch=cfg.max_epochs - 1, cycle=0, valid_score=valid[best][key] or 0.0, member=best)
    work.metrics["valid"] = valid[best]


def round_line(state: RoundState, measures: list[str]) -> str:
    """The line a finished round prints: sizes, the task's measures, the pick and the time."""
    parts = [(f"round {state.round} {state.method} seed {state.seed}: "
              f"{state.n_labelled} labelled ({state.percent_labelled:.1f} %)"), *measures]
    if state.unit == C.UNIT_REGION:
        parts.append(f"{sum(map(len, state.revealed.values()))} regions revealed in {len(state.revealed)} images, "
                     f"{state.percent_pixels:.1f} % of pixels")
    if state.selected_regions:
        parts.append(f"selected {sum(map(len, state.selected_regions.values()))} regions")
    elif state.selected:
        parts.append(f"selected {len(state.selected)}")
    parts.append(f"{sum(state.timings.values()):.1f} s")
    return " | ".join(parts)
