"""Rows of the benchmark table, the facts of the machine, and the CSV / JSON / text outputs."""

from __future__ import annotations

import csv
import datetime
import io
import json
import math
import os
import platform
import re
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import torch

from atomic_io import atomic_write_bytes
from bench.measure import Measured

CPUINFO = Path("/proc/cpuinfo")
META_COLUMNS = ("date", "device", "torch", "threads", "size")


@dataclass
class Row:
    """One measured figure and, where there is one, what it is compared with.

    ratio is always "higher is better": value / reference_value for speeds, the inverse for
    times, as each item documents.
    """

    item: str                           # train | score | strategies | knn | round | target
    case: str                           # what was measured, e.g. "pipeline fp32" or "mc T=50 n=1000"
    metric: str                         # what value is, e.g. "images/s" or "s"
    value: float | None
    reference: str = ""                 # what value is compared with
    reference_value: float | None = None
    ratio: float | None = None
    target: str = ""                    # the goal, where the project sets one
    verdict: str = ""                   # met / not met / n/a (CPU) / not run
    seconds: float | None = None        # wall time of the measurement
    host_peak_mb: float | None = None
    device_peak_mb: float | None = None
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)  # structured details, JSON only

    def with_memory(self, measured: Measured) -> Row:
        self.seconds = measured.seconds
        self.host_peak_mb = measured.host_peak_mb
        self.device_peak_mb = measured.device_peak_mb
        return self


CSV_COLUMNS = (*META_COLUMNS, *(f.name for f in fields(Row) if f.name != "extra"))


def device_name(device: torch.device) -> str:
    """The GPU's name, or the CPU model from /proc/cpuinfo (the platform's word elsewhere)."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        match = re.search(r"^model name\s*:\s*(.+)$", CPUINFO.read_text(), re.MULTILINE)
    except OSError:
        match = None
    return match.group(1).strip() if match else (platform.processor() or platform.machine())


def run_meta(device: torch.device, size: str, argv: list[str]) -> dict[str, Any]:
    return {"date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
            "device": device_name(device), "device_type": device.type, "torch": torch.__version__,
            "threads": torch.get_num_threads(), "size": size, "python": platform.python_version(),
            "command": " ".join(["python -m bench.run", *argv]),
            "load_average_start": list(os.getloadavg())}


def _number(value: float | None, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if value == 0 or abs(value) >= 100:
        return f"{value:.0f}"
    return f"{value:.{digits}g}"


def format_table(meta: dict[str, Any], rows: list[Row]) -> str:
    """A fixed-width text table, headed by the facts of the run."""
    header = ("item", "case", "value", "reference", "ratio", "target", "verdict", "host MB", "dev MB", "note")
    body = [(r.item, r.case, f"{_number(r.value)} {r.metric}".strip(),
             f"{r.reference} {_number(r.reference_value)}".strip(), _number(r.ratio),
             r.target, r.verdict, _number(r.host_peak_mb), _number(r.device_peak_mb), r.note) for r in rows]
    widths = [max(len(h), *(len(line[i]) for line in body)) if body else len(h) for i, h in enumerate(header)]
    title = (f"{meta['date']} | {meta['device']} | torch {meta['torch']} | {meta['threads']} threads | "
             f"size {meta['size']} | load average {meta['load_average_start'][0]:.1f}")
    lines = [title, "  ".join(h.ljust(w) for h, w in zip(header, widths)),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip() for line in body]
    return "\n".join(lines)


def write_results(out_dir: Path, stem: str, meta: dict[str, Any], rows: list[Row]) -> tuple[Path, Path]:
    """<stem>.csv (one line per row, the run's facts repeated) and <stem>.json, each written atomically."""
    out_dir.mkdir(parents=True, exist_ok=True)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        record = {k: v for k, v in asdict(row).items() if k != "extra"}
        writer.writerow({**{k: meta[k] for k in META_COLUMNS}, **record})
    csv_path, json_path = out_dir / f"{stem}.csv", out_dir / f"{stem}.json"
    atomic_write_bytes(csv_path, buffer.getvalue().encode())
    payload = {"meta": meta, "rows": [asdict(r) for r in rows]}
    atomic_write_bytes(json_path, (json.dumps(payload, indent=1) + "\n").encode())
    return csv_path, json_path
