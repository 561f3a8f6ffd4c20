"""What both stages of the joint task share: the data (class labels for every image, masks from
the oracle), the initial labelled set, a person's masks and the round line."""

from __future__ import annotations

from pathlib import Path

import torch

from al import selection
from al.ledger import Ledger
from al.state import RoundState, RunFolder
from engine.context import RunData, load_data
from engine.evaluate import Inference
from models.backbone import STAGE_CHANNELS
from oracles.base import Revealed
from tasks.base import RoundWork, Task, round_line
from tasks.joint.request import write_next_request


class JointTaskBase(Task):
    name = "joint"
    data: RunData

    def load(self, run: RunFolder, first: int) -> None:
        self.data = load_data(self.cfg, self.device)

    def ids(self) -> list[str]:
        return list(self.data.pool.ids)

    def initial_labelled(self) -> list[str]:
        """L_0, shared by every method of a seed: p_init_samples percent of the pool, class by class."""
        pool = self.data.pool
        per_class = selection.initial_per_class(self.cfg.p_init_samples, len(pool), self.data.n_classes)
        return selection.initial_labelled(pool.ids, pool.labels, per_class, self.cfg.MYSEED)

    def class_names(self) -> list[str]:
        return list(self.data.fold.classes)

    def check_strategy(self, ledger: Ledger) -> None:
        pool = self.data.pool
        self.strategy.check(pool.labels[[pool.position[i] for i in ledger.labelled]], STAGE_CHANNELS[-1])

    def answer_sizes(self, ids: list[str]) -> dict[str, tuple[int, int]]:
        return {i: tuple(self.data.train[self.data.pool.position[i]].image.shape[-2:]) for i in ids}

    def write_request(self, folder: Path, r: int, work: RoundWork | None, ledger: Ledger, infer: Inference) -> None:
        if work is None:
            # The initial set is a random draw: its ranking holds the drawn images only, unscored.
            write_next_request(self.cfg, self.run, folder, -1, self.data, None, infer, self.cfg.seg_threshold,
                               ledger.labelled, ledger.labelled, {}, {}, self.regions)
            return
        write_next_request(self.cfg, self.run, folder, r, self.data, work.members[0], infer, work.threshold,
                           ledger.unlabelled, work.pick.selected, work.pick.scores, work.pick.regions, self.regions)

    def mask_for(self, revealed: Revealed, sample_id: str) -> torch.Tensor | None:
        """The training view of a person's mask, or None for the dataset's own mask."""
        if sample_id not in revealed.masks:
            return None
        p = self.data.pool.position[sample_id]
        return self.data.pool.mask_view(p, torch.from_numpy(revealed.masks[sample_id]))

    def round_line(self, state: RoundState) -> str:
        measures = [f"test Dice {state.metric('test', 'dice_idx'):.2f}", f"acc {state.metric('test', 'acc'):.2f}"]
        if state.threshold is not None:
            measures.append(f"threshold {state.threshold:.2f}")
        if state.metric("pseudo", "dice_idx") is not None:
            measures.append(f"pseudo-mask Dice {state.metric('pseudo', 'dice_idx'):.2f} "
                            f"({state.metrics['pseudo']['n']})")
        return round_line(state, measures)
