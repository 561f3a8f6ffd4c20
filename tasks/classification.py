"""The classification task (seed 002): the oracle reveals class labels, a torchvision classifier
learns them (engine/classification.py), and the study stops on patience."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

import constants as C
from al import selection
from al.ledger import Ledger
from al.state import MODEL_FILE, RoundState, RunFolder
from al.strategies.base import Evidence
from data.arrays import GREYSCALE_DATASETS
from engine.classification import (
    ClassificationData,
    evaluate,
    gather_evidence,
    load_classification_data,
    load_weights,
    probabilities,
    train,
    train_setup,
)
from engine.evaluate import Inference
from engine.prediction import Prediction, Predictor, resized
from engine.resident import ResidentSet
from engine.round_model import RoundModel
from engine.runtime import derived_seed
from engine.training_log import TrainingLog
from models.classifier import Classifier, build_classifier
from parseit import resolve_path
from tasks.base import MC, SELECT, Clock, RoundWork, Task, fit_members, loss_prediction_training, round_line


class ClassificationTask(Task):
    name = C.TASK_CLASSIFICATION
    valid_metric = "acc"
    data: ClassificationData

    def load(self, run: RunFolder, first: int) -> None:
        self.data = load_classification_data(self.cfg, self.device)
        self.feature_dim = self.classifier().feature_dim  # an unknown model or missing weights stop here

    def classifier(self) -> Classifier:
        k = self.cfg.classification
        return build_classifier(k.model, self.data.n_classes, k.pretrained,
                                None if k.weights_dir is None else resolve_path(k.weights_dir),
                                loss_prediction_width=self.loss_prediction_width(), dropout=k.head_dropout)

    def loss_prediction_width(self) -> int:
        return self.cfg.ll4al_width if loss_prediction_training(self.cfg, self.strategy) else 0

    def check_strategy(self, ledger: Ledger) -> None:
        self.strategy.check(self.labels(ledger.labelled), self.feature_dim)

    def ids(self) -> list[str]:
        return list(self.data.train.ids)

    def initial_labelled(self) -> list[str]:
        """n_start random images per class (init_sampling_seed, by default the run's seed)."""
        k = self.cfg.classification
        seed = self.cfg.MYSEED if k.init_sampling_seed is None else k.init_sampling_seed
        return selection.initial_labelled(self.data.train.ids, self.data.train.labels_np, k.n_start, seed)

    def rows(self, ids: list[str]) -> list[int]:
        return [self.data.position[i] for i in ids]

    def labels(self, ids: list[str]) -> np.ndarray:
        return self.data.train.labels_np[self.rows(ids)]

    def train(self, work: RoundWork, infer: Inference, clock: Clock, log: TrainingLog) -> None:
        """Each member fresh or warm-started from the previous round's weights; the best on validation reports."""
        cfg, data, r = self.cfg, self.data, work.r
        rows = self.rows(work.ledger.labelled)
        setup = train_setup(cfg, data.flippable, loss_prediction_training(cfg, self.strategy) is not None)

        def build(m: int) -> Classifier:
            model = self.classifier()
            if cfg.classification.warm_start and work.previous is not None:
                load_weights(model, self.run.round_dir(r - 1) / MODEL_FILE, m)
            return model

        fit_members(work, 1 if self.strategy is None else self.strategy.n_models(), cfg, infer, clock, build,
                    lambda model, generator, desc, member_log: train(model, data.train.images[rows],
                                                                     data.train.labels[rows], setup, generator, desc,
                                                                     infer, member_log),
                    lambda model: evaluate(model, data.valid, cfg.valid_batch_size, infer), self.valid_metric, log)

    def evaluate(self, work: RoundWork, infer: Inference, clock: Clock) -> None:
        """Test accuracy; the study stops after the last round, on patience (rounds since validation accuracy
        last beat its best, 002) or when nothing is left to label."""
        cfg, r = self.cfg, work.r
        with clock("validate"):
            work.metrics["test"] = evaluate(work.members[0], self.data.test, cfg.valid_batch_size, infer)
        history = [self.run.read_state(j).metric("valid", "acc") for j in range(r)] + [work.metrics["valid"]["acc"]]
        stale, top = 0, -1.0
        for acc in history:
            stale, top = (0, acc) if acc > top else (stale + 1, top)
        patience = cfg.classification.patience
        work.pick.stop_reason = (
            C.STOP_ROUNDS if r == cfg.max_al_its - 1 and not self.method.single_round else
            C.STOP_PATIENCE if patience and stale >= patience else
            C.STOP_EXHAUSTED if not work.ledger.unlabelled else None)

    def select(self, work: RoundWork, infer: Inference, clock: Clock) -> None:
        """n_new images ranked together (the oracle reveals the class, so there is no class-balanced pick)."""
        if self.strategy is None or work.pick.stop_reason is not None:
            return
        cfg, r, leftovers = self.cfg, work.r, work.ledger.unlabelled
        rng = np.random.default_rng(derived_seed(cfg.MYSEED, r, 0, SELECT))
        candidates = self.strategy.candidate_subset(leftovers, rng)
        labelled = work.ledger.labelled
        evidence = Evidence(candidates=candidates, candidate_labels=np.zeros(len(candidates), dtype=np.int64),
                            labelled=labelled, labelled_labels=self.labels(labelled))
        with clock("score"):
            gather_evidence(self.strategy, work.members, self.data, evidence, self.rows(candidates),
                            self.rows(labelled), cfg.valid_batch_size, derived_seed(cfg.MYSEED, r, 0, MC), infer)
        with clock("select"):
            picked = self.strategy.select(evidence, min(cfg.classification.n_new, len(candidates)), rng)
        work.pick.selected, work.pick.scores = picked.selected, picked.scores
        if len(picked.selected) == len(leftovers):
            work.pick.stop_reason = C.STOP_EXHAUSTED

    @property
    def warm_starts(self) -> bool:
        return self.cfg.classification.warm_start

    def class_names(self) -> list[str]:
        return list(self.data.fold.classes)

    def model_extra(self, work: RoundWork) -> dict[str, Any]:
        return {"image_size": list(self.data.train.images.shape[-2:]),
                "channels": 1 if self.cfg.dataset in GREYSCALE_DATASETS else 3,
                "loss_prediction_width": self.loss_prediction_width()}

    def predictor(self, model: RoundModel, infer: Inference) -> Predictor:
        return ClassPredictor.load(model, infer)

    def publish(self, work: RoundWork, partial: Path, clock: Clock) -> RoundState:
        cfg, pick = self.cfg, work.pick
        return RoundState(round=work.r, method=cfg.al_type, seed=cfg.MYSEED, dataset=cfg.dataset,
                          n_train=len(self.data.train), labelled=work.ledger.labelled, selected=pick.selected,
                          exhausted=self.method.single_round or pick.stop_reason is not None,
                          best=work.best,
                          metrics=work.metrics, history=work.history, scores=pick.scores, task=self.name,
                          stop_reason=pick.stop_reason, annotations=work.revealed.provenance)

    def round_line(self, state: RoundState) -> str:
        measures = [f"test acc {state.metric('test', 'acc'):.2f}", f"valid acc {state.metric('valid', 'acc'):.2f}"]
        if state.stop_reason:
            measures.append(f"stopped: {state.stop_reason}")
        return round_line(state, measures)


@dataclass
class ClassPredictor:
    """Class probabilities of new images, resized to the size the classifier was trained at."""

    model: Classifier
    round_model: RoundModel
    inference: Inference
    channels: int
    with_masks: bool = False
    label_map: bool = False

    @classmethod
    def load(cls, round_model: RoundModel, infer: Inference) -> ClassPredictor:
        cfg, extra = round_model.config, round_model.extra
        k = cfg.classification
        model = build_classifier(k.model, len(round_model.classes), False,
                                 loss_prediction_width=extra["loss_prediction_width"], dropout=k.head_dropout)
        model.load_state_dict(round_model.weights)
        return cls(model.to(infer.device), round_model, infer, extra["channels"])

    def __call__(self, images: Sequence[np.ndarray]) -> list[Prediction]:
        x = resized(images, tuple(self.round_model.extra["image_size"])).to(self.inference.device)
        subset = ResidentSet([str(k) for k in range(len(images))], x, torch.zeros(len(images), dtype=torch.long))
        probs = probabilities(self.model, subset, None, self.round_model.config.valid_batch_size,
                              infer=self.inference).cpu().numpy()
        return [Prediction(None, row) for row in probs]
