"""The segmentation task (seeds 001 and 004): the oracle reveals K-class label maps, a segmentation
network learns them (engine/segmentation.py), and the strategies score per-pixel class distributions.

There is no image-level label, so the initial set is seg_n_start images drawn at random and each
round's pick is the plain top-k of the strategy's scores (the class-balanced top-k of the joint task
with every image in one class).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import constants as C
from al import selection
from al.ledger import Ledger
from al.regions import load_or_build, partial_label, pick_regions, random_regions, scored_regions
from al.request import PickedImage, RankedCandidate
from al.scores import categorical_entropy
from al.state import RoundState, RunFolder, experiment_dir
from al.strategies.base import Evidence
from engine.context import train_settings
from engine.evaluate import Inference
from engine.prediction import Prediction, Predictor, resized
from engine.resident import ResidentSet
from engine.round_model import RoundModel
from engine.runtime import derived_seed
from engine.segmentation import (
    SegmentationData,
    evaluate,
    gather_evidence,
    load_segmentation_data,
    pixel_score_maps,
    probabilities,
    train,
)
from engine.training_log import TrainingLog
from models.segmentation import SegmentationNet, build_segmentation_model
from oracles.base import Revealed
from parseit import resolve_path
from tasks.base import MC, SELECT, Clock, Pick, RoundWork, Task, fit_members, round_line
from tasks.request import write_pick_request


class SegmentationTask(Task):
    name = C.TASK_SEGMENTATION
    valid_metric = "miou"
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

    def train(self, work: RoundWork, infer: Inference, clock: Clock, log: TrainingLog) -> None:
        """Each member from fresh weights on L_r; the best mIoU on validation reports."""
        cfg, data = self.cfg, self.data
        rows = [data.position[i] for i in [*work.ledger.labelled, *work.ledger.revealed]]
        labels = self.training_labels(work.ledger, work.revealed)
        settings = train_settings(cfg, crop=0, segmentation=True, hflip=cfg.segmentation.seg_hflip, vflip=False)
        fit_members(work, 1 if self.strategy is None else self.strategy.n_models(), cfg, infer, clock,
                    lambda m: self.model(),
                    lambda model, generator, desc, member_log: train(model, data.train, rows, settings, infer,
                                                                     generator, desc, labels, member_log),
                    lambda model: evaluate(model, data.valid, cfg.valid_batch_size, infer, data.classes),
                    self.valid_metric, log)

    def training_labels(self, ledger: Ledger, revealed: Revealed) -> torch.Tensor | None:
        """The dataset's label maps, with a person's maps where one answered, and only the regions revealed so
        far of the images not fully labelled (IGNORE elsewhere); None when the dataset's maps serve as they are."""
        if not ledger.revealed and not revealed.masks:
            return None
        labels = self.data.train.labels.clone()
        for u, ks in ledger.revealed.items():
            p = self.data.position[u]
            labels[p] = partial_label(labels[p], self.regions[u].to(labels.device), ks)
        for i, answer in revealed.masks.items():
            labels[self.data.position[i]] = torch.from_numpy(answer).to(labels.device, labels.dtype)
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

    def class_names(self) -> list[str]:
        return list(self.data.classes)

    def predictor(self, model: RoundModel, infer: Inference) -> Predictor:
        return LabelMapPredictor.load(model, infer)

    def publish(self, work: RoundWork, partial: Path, clock: Clock) -> RoundState:
        cfg, pick = self.cfg, work.pick
        return RoundState(round=work.r, method=cfg.al_type, seed=cfg.MYSEED, dataset=cfg.dataset,
                          n_train=len(self.data.train), labelled=work.ledger.labelled, selected=pick.selected,
                          exhausted=self.method.single_round or pick.exhausted, best=work.best, metrics=work.metrics,
                          history=work.history, scores=pick.scores, task=self.name,
                          annotations=work.revealed.provenance, annotation_seconds=work.revealed.seconds,
                          unit=C.UNIT_REGION if self.regions else C.UNIT_IMAGE,
                          revealed=work.ledger.revealed_lists(), selected_regions=pick.regions,
                          pixels_annotated=self.annotated_pixels(work.ledger), n_pixels=self.data.train.labels.numel())

    def annotated_pixels(self, ledger: Ledger) -> int:
        """Whole images of L_r and the revealed regions."""
        per_image = self.data.train.labels[0].numel()
        revealed = sum(int(torch.isin(self.regions[u], torch.tensor(sorted(ks), dtype=self.regions[u].dtype)).sum())
                       for u, ks in ledger.revealed.items())
        return len(ledger.labelled) * per_image + revealed

    # What a person annotates: label maps at the resolution the network sees (image_height x image_width).
    def answer_sizes(self, ids: list[str]) -> dict[str, tuple[int, int]]:
        return {i: tuple(self.data.train.labels.shape[-2:]) for i in ids}

    def answer_classes(self) -> tuple[str, ...]:
        return self.data.classes

    def write_request(self, folder: Path, r: int, work: RoundWork | None, ledger: Ledger, infer: Inference) -> None:
        """The picked images with the reported model's label map and uncertainty (r = -1: the initial set)."""
        if work is None:
            self.write_label_map_request(folder, -1, None, infer, ledger.labelled, ledger.labelled, {}, {})
            return
        self.write_label_map_request(folder, r, work.members[0], infer, ledger.unlabelled, work.pick.selected,
                                     work.pick.scores, work.pick.regions)

    def write_label_map_request(self, folder: Path, r: int, model: SegmentationNet | None, infer: Inference,
                                candidates: list[str], picked: list[str], scores: dict[str, float],
                                regions_picked: dict[str, list[int]]) -> None:
        """The model's label map (argmax) and the entropy of its class distribution over log K."""
        train, position = self.data.train, self.data.position
        maps: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        if model is not None and picked:
            rows = [position[i] for i in picked]
            for batch, probs in probabilities(model, train, rows, self.cfg.valid_batch_size, infer):
                spread = categorical_entropy(probs.movedim(1, -1)) / np.log(self.data.n_classes)
                for i, label, uncertainty in zip(picked[batch], probs.argmax(dim=1), spread):
                    maps[i] = label.to(torch.uint8).cpu().numpy(), uncertainty.cpu().numpy()

        def picture(i: str, inside: np.ndarray | None) -> PickedImage:
            label, uncertainty = maps.get(i, (None, None))
            return PickedImage(i, train.images[position[i]].permute(1, 2, 0).cpu().numpy(), label, None, inside,
                               uncertainty)

        paths = {rec.id: rec.image for rec in self.data.fold.train}
        rows = [RankedCandidate(i, paths[i], "", scores.get(i), i in set(picked)) for i in candidates]
        write_pick_request(self.cfg, self.run, folder, r, rows, picture, picked, self.regions, regions_picked,
                           self.data.classes)

    def round_line(self, state: RoundState) -> str:
        return round_line(state, [f"test mIoU {state.metric('test', 'miou'):.2f}",
                                  f"pixel acc {state.metric('test', 'pixel_acc'):.2f}",
                                  f"valid mIoU {state.metric('valid', 'miou'):.2f}"])


@dataclass
class LabelMapPredictor:
    """Label maps of new images: predicted at image_height x image_width, as the network was trained, then brought
    back to the image's size (nearest)."""

    model: SegmentationNet
    round_model: RoundModel
    inference: Inference
    channels: int = 3
    with_masks: bool = True
    label_map: bool = True

    @classmethod
    def load(cls, round_model: RoundModel, infer: Inference) -> LabelMapPredictor:
        s = round_model.config.segmentation
        model = build_segmentation_model(s.seg_model, len(round_model.classes), s.seg_width, s.seg_dropout, None)
        model.load_state_dict(round_model.weights)
        return cls(model.to(infer.device), round_model, infer)

    def __call__(self, images: Sequence[np.ndarray]) -> list[Prediction]:
        cfg = self.round_model.config
        x = resized(images, (cfg.segmentation.image_height, cfg.segmentation.image_width)).to(self.inference.device)
        subset = ResidentSet([str(k) for k in range(len(images))], x, torch.zeros(len(images), dtype=torch.long))
        out = []
        for rows, probs in probabilities(self.model, subset, None, cfg.valid_batch_size, self.inference):
            for image, prob in zip(images[rows], probs):
                label = Image.fromarray(prob.argmax(0).to(torch.uint8).cpu().numpy())
                size = (image.shape[1], image.shape[0])
                out.append(Prediction(np.asarray(label.resize(size, Image.NEAREST)),
                                      prob.flatten(1).mean(1).cpu().numpy()))
        return out
