"""Per-epoch training logs of a round: `training_log.csv` and, optionally, TensorBoard scalars.

state.json keeps a round's curves once the round is over; these logs are for the person watching a
long round while it trains, and for TensorBoard users (`tensorboard --logdir exps/`). Both live in
the round's partial folder, so a crashed round leaves no log that a rerun would have to reconcile:
the rerun starts the folder again, and the rename publishes the logs with the round. The logs only
read values the training loop has already computed: no random draw and no device sync is added, so
a round trains the same with or without them.
"""

from __future__ import annotations

import csv
import functools
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from atomic_io import atomic_write_text

CSV_FILE = "training_log.csv"
TENSORBOARD_DIR = "tensorboard"
NOT_INSTALLED = "tensorboard is not installed: training logs are written as CSV only (pip install tensorboard)"
FLUSH_SECONDS = 10   # how late TensorBoard may show an epoch (a flush per epoch costs more than a small epoch)
SCALARS = ("lr", "loss", "valid", "grad_norm", "logit_peak")


@functools.cache
def summary_writer() -> type | None:
    """torch's SummaryWriter, imported when a round first logs (the import is slow); None, said once per
    process, when the tensorboard package is missing."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        print(NOT_INSTALLED, flush=True)
        return None
    return SummaryWriter


class TrainingLog:
    """One round's epochs: a CSV row per (cycle, ensemble member, epoch), rewritten whole after each epoch so
    that a reader never sees half a row, and TensorBoard scalars tagged round_<rrr>/<name>[_cycle<c>][_member<m>]
    under <folder>/tensorboard/. `metric` names the validation measure that selects the model."""

    def __init__(self, folder: Path, r: int, metric: str, tensorboard: bool) -> None:
        self.folder, self.round, self.metric, self.tensorboard = folder, r, metric, tensorboard
        self.rows: list[dict[str, Any]] = []
        self.writer: Any = None

    def __enter__(self) -> TrainingLog:  # noqa: PYI034 (Python 3.10 has no typing.Self)
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def member(self, cycle: int, member: int = 0) -> MemberLog:
        return MemberLog(self, cycle, member)

    def add(self, row: dict[str, Any]) -> None:
        self.rows.append(row)
        self._write_csv()
        self._scalars(row, SCALARS)

    def validated(self, cycle: int, member: int, value: float | None) -> None:
        """The validation score of a model measured once after training goes on its last epoch's row."""
        row = next(row for row in reversed(self.rows) if (row["cycle"], row["member"]) == (cycle, member))
        row["valid"] = value
        self._write_csv()
        self._scalars(row, ("valid",))

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None

    def columns(self) -> list[str]:
        return ["cycle", "member", "epoch", "lr", "loss", f"valid_{self.metric}", "grad_norm", "logit_peak"]

    def _write_csv(self) -> None:
        text = io.StringIO()
        out = csv.writer(text, lineterminator="\n")
        out.writerow(self.columns())
        out.writerows([["" if row[k] is None else row[k] for k in ("cycle", "member", "epoch", *SCALARS)]
                       for row in self.rows])
        atomic_write_text(self.folder / CSV_FILE, text.getvalue())

    def _scalars(self, row: dict[str, Any], names: tuple[str, ...]) -> None:
        writer = self._writer()
        if writer is None:
            return
        suffix = (f"_cycle{row['cycle']}" if row["cycle"] else "") + (f"_member{row['member']}" if row["member"] else "")
        for name in names:
            if row[name] is not None:
                tag = f"valid_{self.metric}" if name == "valid" else name
                writer.add_scalar(f"round_{self.round:03d}/{tag}{suffix}", row[name], row["epoch"])

    def _writer(self) -> Any:
        """The round's SummaryWriter, created with its first scalar (None: CSV only)."""
        if self.writer is None and self.tensorboard and (writer_class := summary_writer()) is not None:
            self.writer = writer_class(log_dir=str(self.folder / TENSORBOARD_DIR), flush_secs=FLUSH_SECONDS)
        return self.writer


@dataclass(frozen=True)
class MemberLog:
    """The part of a round's log one training loop writes: one cycle of one ensemble member."""

    log: TrainingLog
    cycle: int
    member: int = 0

    def epoch(self, epoch: int, lr: float, loss: float, valid: float | None = None, grad_norm: float | None = None,
              logit_peak: float | None = None) -> None:
        """One finished epoch; the values a task does not measure stay empty."""
        self.log.add({"cycle": self.cycle, "member": self.member, "epoch": epoch, "lr": lr, "loss": loss,
                      "valid": valid, "grad_norm": grad_norm, "logit_peak": logit_peak})

    def validated(self, value: float | None) -> None:
        self.log.validated(self.cycle, self.member, value)
