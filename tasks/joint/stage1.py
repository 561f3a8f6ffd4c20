"""Stage 1 of the joint task (WSL): backbone + WILDCAT trained on every image's class label; its best
weights are theta0, the starting point of every stage-2 round of the seed."""

from __future__ import annotations

from pathlib import Path

import constants as C
from al.ledger import Ledger
from al.state import BestEpoch, RoundState, RunFolder, theta0_path
from engine.checkpoint import save_theta0
from engine.context import train_settings
from engine.evaluate import Inference
from engine.runtime import cpu_generator, derived_seed, seed_everything
from engine.train import BestModel, fit
from engine.training_log import TrainingLog
from tasks.base import AUGMENT, Clock, RoundWork
from tasks.joint.common import JointTaskBase
from tasks.joint.theta0 import claim_theta0
from tasks.joint.wsl_methods import wsl_method


class WSLTask(JointTaskBase):
    asks_oracle = False
    valid_metric = "acc"    # classification accuracy of the localiser on validation

    def load(self, run: RunFolder, first: int) -> None:
        claim_theta0(self.cfg, run)
        super().load(run, first)

    def ledger(self, previous: RoundState | None) -> Ledger:
        return Ledger(tuple(self.ids()), [], [])   # image labels only: nothing is asked of the oracle

    def train(self, work: RoundWork, infer: Inference, clock: Clock, log: TrainingLog) -> None:
        cfg, data, method = self.cfg, self.data, wsl_method(self.cfg)
        seed_everything(cfg.MYSEED)
        model = method.build(data.n_classes, infer.device)
        items = data.pool.items([(p, C.U, None) for p in range(len(data.pool))], with_masks=False)
        best = BestModel(model)
        settings = method.settings(train_settings(cfg, data.pool.geometry.train_crop, False, cfg.hflip, cfg.vflip))
        stats = fit(model, items, method.objective(infer), settings, infer,
                    lambda m: method.validate(m, data.valid, infer), best, cycle=0,
                    generator=cpu_generator(derived_seed(cfg.MYSEED, 0, 0, AUGMENT)), desc=f"WSL {cfg.wsl_method}",
                    log=log.member(0))
        clock.add("train", stats.train_seconds)
        clock.add("validate", stats.validate_seconds)
        best.restore(model)
        work.members, work.history, work.best = [model], {"cycle0": stats.curves()}, best

    def evaluate(self, work: RoundWork, infer: Inference, clock: Clock) -> None:
        method = wsl_method(self.cfg)
        sets = {C.TRAIN: self.data.train_eval, C.VALID: self.data.valid, C.TEST: self.data.test}
        with clock("validate"):
            for name in method.subsets:
                work.metrics[name] = method.metrics(work.members[0], sets[name], infer)

    def save_model(self, work: RoundWork, partial: Path) -> None:
        """Stage 1's model is theta0 (theta0/), written by publish."""

    def publish(self, work: RoundWork, partial: Path, clock: Clock) -> RoundState:
        cfg, best = self.cfg, work.best
        with clock("write"):
            save_theta0(theta0_path(cfg), work.members[0], {
                "dataset": cfg.dataset, "split": cfg.split, "fold": cfg.fold, "seed": cfg.MYSEED,
                "num_classes": self.data.n_classes, "run": str(self.run.root), "valid_acc": best.score,
                "epoch": best.epoch, "wsl_method": cfg.wsl_method})
        return RoundState(round=0, method=cfg.al_type, seed=cfg.MYSEED, dataset=cfg.dataset,
                          n_train=len(self.data.pool), labelled=[], selected=[], exhausted=True,
                          theta0=str(theta0_path(cfg)), wsl_method=cfg.wsl_method,
                          best=BestEpoch(best.epoch, 0, best.score),
                          metrics=work.metrics, history=work.history)
