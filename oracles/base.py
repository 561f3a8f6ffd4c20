"""The oracle axis: who answers the pick of a round, and what a round receives from it.

An oracle is chosen once per run by name (`oracle` in the configuration, oracles.ORACLES); the
round asks it for what round r takes in (`reveal`), keeps its answers in the round folder (`keep`)
and, at the end, hands it the next pick (`request`). It knows nothing of models or images: the
task it serves says what an answer looks like (`OracleClient`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from al.ledger import Ledger
from al.state import RunFolder
from engine.evaluate import Inference
from parseit import Config


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
    label_maps: bool = False   # the answers are K-class label maps, not binary masks


class OracleClient(Protocol):
    """What an oracle needs of the task it answers for."""

    regions: dict[str, torch.Tensor]   # id -> superpixel labels (region-level rounds), else empty

    def answer_sizes(self, ids: list[str]) -> dict[str, tuple[int, int]]:
        """(height, width) of the answer expected for each id."""

    def answer_classes(self) -> tuple[str, ...] | None:
        """The classes of the label maps a person answers with; None: binary masks."""

    def write_request(self, folder: Path, r: int, work: Any, ledger: Ledger, infer: Inference) -> None:
        """The request a person annotates: round r's pick (r = -1, work None: the initial labelled set)."""


class Oracle:
    """Base: the simulated oracle's behaviour, which reveals the dataset's own labels at once."""

    name = "base"

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg

    def reveal(self, run: RunFolder, r: int, ledger: Ledger, first: bool, client: OracleClient) -> Revealed:
        raise NotImplementedError

    def check_finished(self, run: RunFolder, r: int) -> None:
        """Every round the call asks for, from round r on, has finished: refuse what would be ignored."""

    def keep(self, partial: Path, revealed: Revealed) -> None:
        """Keep what the round took in, so that later rounds do not need it again."""

    def request(self, run: RunFolder, partial: Path, r: int, work: Any, client: OracleClient,
                infer: Inference) -> None:
        """Hand the round's pick to the oracle (nothing to do when it answers at once)."""

    def request_initial(self, run: RunFolder, ledger: Ledger, client: OracleClient, infer: Inference) -> None:
        """Hand the initial labelled set to the oracle before round 0 (nothing to do when it answers at once)."""
