"""Run the benchmark suite and write its table.

    python -m bench.run [--device auto|cpu|cuda] [--size small|paper] [--only train,score,strategies,knn,round,frozen]
                        [--out bench_results/] [--ph2 PATH]

Prints the table and writes bench_<size>_<device type>.csv and .json into --out. Every row is
described in BENCHMARKS.md. Default size: small on the CPU, paper on CUDA.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn

import torch

from al.locks import RunLockedError
from al.state import RunStateError
from bench.frozen import frozen_rows
from bench.knn_speed import knn_rows
from bench.report import Row, format_table, run_meta, write_results
from bench.rounds import default_ph2_root, round_rows
from bench.scoring import score_rows
from bench.sizes import SIZES, Size
from bench.strategies import region_rows, strategy_rows
from bench.targets import target_rows
from bench.train_speed import train_rows
from data.records import DataError
from engine.checkpoint import CheckpointError
from engine.runtime import DeviceError, select_device
from parseit import exit_on_error, resolve_path

ITEMS = ("train", "score", "strategies", "knn", "round", "frozen")
DEFAULT_OUT = resolve_path("bench_results")


class BenchArgumentError(ValueError):
    """A bad command-line argument of the benchmark (one line naming it and the fix)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise BenchArgumentError(f"{message}: see python -m bench.run --help")


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = _Parser(prog="python -m bench.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--size", choices=tuple(SIZES), default=None,
                        help="small (default on the CPU) or paper (default on CUDA)")
    parser.add_argument("--only", default=",".join(ITEMS), help=f"comma-separated subset of {','.join(ITEMS)}")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="folder of the CSV and JSON results")
    parser.add_argument("--ph2", type=Path, default=None,
                        help="PH2 root for the paper-size rounds (default: data_root of config_yaml/ph2.yaml, "
                             "used when it exists)")
    args = parser.parse_args(argv)
    args.only = tuple(item.strip() for item in args.only.split(",") if item.strip())
    unknown = [item for item in args.only if item not in ITEMS]
    if unknown or not args.only:
        raise BenchArgumentError(f"--only got '{','.join(unknown) or args.only}': use a comma-separated subset "
                                 f"of {','.join(ITEMS)}")
    if args.ph2 is not None and not (args.ph2 / "labels.csv").is_file():
        raise FileNotFoundError(f"--ph2 {args.ph2} holds no labels.csv: pass the PH2 root in the generic layout")
    return args


def ph2_root(explicit: Path | None) -> Path | None:
    """--ph2 when given, else the configured PH2 root when its data is there."""
    if explicit is not None:
        return explicit
    root = default_ph2_root()
    return root if (root / "labels.csv").is_file() else None


def run_suite(items: Sequence[str], size: Size, device: torch.device, out: Path, ph2: Path | None,
              argv: Sequence[str], log: Callable[[str], None] = print) -> tuple[list[Row], Path, Path]:
    """Run the items in order, add the target rows, write the results; returns (rows, csv path, json path)."""
    meta = run_meta(device, size.name, list(argv))
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="bench-") as work:
        steps: dict[str, Callable[[], list[Row]]] = {
            "train": lambda: train_rows(size, device),
            "score": lambda: score_rows(size, device),
            "strategies": lambda: strategy_rows(size, device) + region_rows(size, device),
            "knn": lambda: knn_rows(size.knn_sizes, device),
            "round": lambda: round_rows(size, device, Path(work), ph2),
            "frozen": lambda: frozen_rows(size, device, Path(work), ph2),
        }
        for item in ITEMS:
            if item in items:
                log(f"bench: {item} ({size.name} size, {meta['device']})")
                rows += steps[item]()
    rows += target_rows(rows, device, size)
    meta["load_average_end"] = list(os.getloadavg())
    csv_path, json_path = write_results(out, f"bench_{size.name}_{device.type}", meta, rows)
    log(format_table(meta, rows))
    return rows, csv_path, json_path


def main(argv: Sequence[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    with exit_on_error(BenchArgumentError, FileNotFoundError, DeviceError, DataError, CheckpointError,
                       RunStateError, RunLockedError):
        args = parse_args(argv)
        device = select_device(args.device, "0")
        size = SIZES[args.size or ("paper" if device.type == "cuda" else "small")]
        ph2 = ph2_root(args.ph2) if (size.name == "paper" and "round" in args.only) or "frozen" in args.only else None
        if args.ph2 is not None and ph2 is None:
            print("bench: --ph2 ignored: PH2 is used by the frozen item, and by the round item at paper size")
        _, csv_path, json_path = run_suite(args.only, size, device, args.out, ph2, argv)
        print(f"written {csv_path} and {json_path}")


if __name__ == "__main__":
    main()
