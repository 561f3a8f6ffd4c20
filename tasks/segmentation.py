"""The segmentation task (seeds 001 and 004): the oracle reveals K-class label maps, a segmentation
network learns them (engine/segmentation.py), and the strategies score per-pixel class distributions.

There is no image-level label, so the initial set is seg_n_start images drawn at random and each
round's pick is the plain top-k of the strategy's scores (the class-balanced top-k of the joint task
with every image in one class).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

import constants as C
from al import selection
from al.ledger import Ledger
from al.regions import load_or_build, partial_label, pick_regions, random_regions, scored_regions
from al.state import RoundState, RunFolder, experiment_dir
from al.strategies.base import Evidence
from engine.context import train_settings
from engine.evaluate import Inference
from engine.runtime import derived_seed
from engine.segmentation import (
    SegmentationData,
    evaluate,
    gather_evidence,
    load_segmentation_data,
    pixel_score_maps,
    train,
)
from models.segmentation import SegmentationNet, build_segmentation_model
from parseit import resolve_path
from tasks.base import MC, SELECT, Clock, Pick, RoundWork, Task, fit_members, round_line


class SegmentationTask(Task):
    name = C.TASK_SEGMENTATION
    data: SegmentationData

    def load(self, run: RunFolder, first: int) -> None:
        self.data = load_segmentation_data(self.cfg, self.device)
        self.model()   # an unknown model or an unusable weights file stops here
        if self.cfg.annotation_unit == C.UNIT_REGION and self.strategy is not None:
            train = self.data.train
            self.regions = load_or_build(experiment_dir(self.cfg) / "superpixels", train.ids, list(train.images.cpu()),
                                         self.cfg.regions_per_image, self.cfg.superpixel_method, self.cfg.progress)

    def model(self) -> SegmentationNet:
        s = self.cfg.segmentation
        return build_segmentation_model(s.seg_model, self.data.n_classes, s.seg_width, s.seg_dropout,
                                        None if s.seg_weights_path is None else resolve_path(s.seg_weights_path))

    def check_strategy(self, ledger: Ledger) -> None:
        # Only HU and DAL read the feature size, and they do not run on this task.
        self.strategy.check(np.zeros(len(ledger.labelled), dtype=np.int64), 0)

    def ids(self) -> list[str]:
        return list(self.data.train.ids)

    def initial_labelled(self) -> list[str]:
        """seg_n_start images drawn at random (the seed alone decides, as for every task)."""
        ids = self.data.train.ids
        n = min(self.cfg.segmentation.seg_n_start, len(ids))
        return selection.initial_labelled(ids, np.zeros(len(ids), dtype=np.int64), n, self.cfg.MYSEED)

    def train(self, work: RoundWork, infer: Inference, clock: Clock) -> None:
        """Each member from fresh weights on L_r; the best mIoU on validation reports."""
        cfg, data = self.cfg, self.data
        rows = [data.position[i] for i in [*work.ledger.labelled, *work.ledger.revealed]]
        labels = self.training_labels(work.ledger)
        settings = train_settings(cfg, crop=0, segmentation=True, hflip=cfg.segmentation.seg_hflip, vflip=False)
        fit_members(work, 1 if self.strategy is None else self.strategy.n_models(), cfg, infer, clock,
                      lambda m: self.model(),
                      lambda model, generator, desc: train(model, data.train, rows, settings, infer, generator, desc,
                                                           labels),
                      lambda model: evaluate(model, data.valid, cfg.valid_batch_size, infer, data.classes), "miou")

    def training_labels(self, ledger: Ledger) -> torch.Tensor | None:
        """The label maps with the regions revealed so far of the images not fully labelled (IGNORE elsewhere);
        None at image level."""
        if not ledger.revealed:
            return None
        labels = self.data.train.labels.clone()
        for u, ks in ledger.revealed.items():
            p = self.data.position[u]
            labels[p] = partial_label(labels[p], self.regions[u].to(labels.device), ks)
        return labels

    def evaluate(self, work: RoundWork, infer: Inference, clock: Clock) -> None:
        with clock("validate"):
            work.metrics["test"] = evaluate(work.members[0], self.data.test, self.cfg.valid_batch_size, infer,
                                            self.data.classes)

    def select(self, work: RoundWork, infer: Inference, clock: Clock) -> None:
        """seg_n_new images, the strategy's top-k over the unlabelled pool."""
        leftovers = work.ledger.unlabelled
        if self.strategy is None:
            work.pick.exhausted, work.pick.final = True, True
            return
        cfg, r, data = self.cfg, work.r, self.data
        rng = np.random.default_rng(derived_seed(cfg.MYSEED, r, 0, SELECT))
        if self.regions:
            self.select_regions(work, infer, clock, rng)
            return
        candidates = self.strategy.candidate_subset(leftovers, rng)
        labelled = work.ledger.labelled
        evidence = Evidence(candidates=candidates, candidate_labels=np.zeros(len(candidates), dtype=np.int64),
                            labelled=labelled, labelled_labels=np.zeros(len(labelled), dtype=np.int64))
        with clock("score"):
            gather_evidence(self.strategy, work.members, data, evidence, [data.position[i] for i in candidates],
                            [data.position[i] for i in labelled], cfg.valid_batch_size, infer,
                            derived_seed(cfg.MYSEED, r, 0, MC))
        with clock("select"):
            picked = self.strategy.select(evidence, min(cfg.segmentation.seg_n_new, len(candidates)), rng)
        work.pick.selected, work.pick.scores = picked.selected, picked.scores
        work.pick.exhausted = len(picked.selected) == len(leftovers)

    def select_regions(self, work: RoundWork, infer: Inference, clock: Clock, rng: np.random.Generator) -> None:
        """The top regions of the images not fully labelled by the mean of the strategy's pixel score (a random
        draw for Random); as many regions (or pixels) as seg_n_new images."""
        cfg, data, leftovers = self.cfg, self.data, work.ledger.unlabelled
        with clock("score"):
            if self.strategy.required():
                maps = pixel_score_maps(self.strategy, work.members, data.train, [data.position[u] for u in leftovers],
                                        cfg.valid_batch_size, infer, derived_seed(cfg.MYSEED, work.r, 0, MC))
                rows = scored_regions(((data.train.ids[p], m) for positions, batch in maps
                                       for p, m in zip(positions, batch)), self.regions)
            else:
                rows = random_regions(leftovers, self.regions, rng)
        s = cfg.segmentation
        budget = s.seg_n_new * (cfg.regions_per_image if cfg.region_budget == "regions" else s.image_height * s.image_width)
        with clock("select"):
            picked = pick_regions(rows, work.ledger.revealed, budget, cfg.region_budget)
        work.pick = Pick(sorted(picked.regions), picked.scores, picked.regions, picked.exhausted)

    def publish(self, work: RoundWork, partial: Path, clock: Clock) -> RoundState:
        cfg, pick = self.cfg, work.pick
        return RoundState(round=work.r, method=cfg.al_type, seed=cfg.MYSEED, dataset=cfg.dataset,
                          n_train=len(self.data.train), labelled=work.ledger.labelled, selected=pick.selected,
                          exhausted=self.method.single_round or pick.exhausted, best=work.best, metrics=work.metrics,
                          history=work.history, scores=pick.scores, task=self.name,
                          annotations=work.revealed.provenance, unit=C.UNIT_REGION if self.regions else C.UNIT_IMAGE,
                          revealed=work.ledger.revealed_lists(), selected_regions=pick.regions,
                          pixels_annotated=self.annotated_pixels(work.ledger), n_pixels=self.data.train.labels.numel())

    def annotated_pixels(self, ledger: Ledger) -> int:
        """Whole images of L_r and the revealed regions."""
        per_image = self.data.train.labels[0].numel()
        revealed = sum(int(torch.isin(self.regions[u], torch.tensor(sorted(ks), dtype=self.regions[u].dtype)).sum())
                       for u, ks in ledger.revealed.items())
        return len(ledger.labelled) * per_image + revealed

    def round_line(self, state: RoundState) -> str:
        return round_line(state, [f"test mIoU {state.metric('test', 'miou'):.2f}",
                                  f"pixel acc {state.metric('test', 'pixel_acc'):.2f}",
                                  f"valid mIoU {state.metric('valid', 'miou'):.2f}"])
