"""Wall time and peak memory of one measured block, host and device.

Host peak: the kernel's resident-set high-water mark (VmHWM) is reset through
/proc/self/clear_refs before the block and read after it, so the peak is exact (not sampled) and
belongs to the block alone even inside one long process. Freed heap is handed back first
(glibc malloc_trim), so memory an earlier block freed but kept resident does not hide this
block's allocations. The figure is the peak above the resident size at the start of the block.
Where /proc or malloc_trim is missing (not Linux) the host peak is reported as None.

Device peak: torch.cuda.reset_peak_memory_stats, then max_memory_allocated above the memory
allocated at the start (what PyTorch's allocator handed out, not what it cached).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch

from engine.runtime import sync

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")
_RESET_PEAK = "5"  # clear_refs code that resets VmHWM to the current VmRSS (Linux >= 4.0)
_MB = 1024.0 * 1024.0


@dataclass
class Measured:
    """Filled in when the block ends."""

    seconds: float = 0.0
    host_peak_mb: float | None = None
    device_peak_mb: float | None = None


def _status_kb(field: str) -> int | None:
    try:
        match = re.search(rf"^{field}:\s+(\d+) kB", _STATUS.read_text(), re.MULTILINE)
    except OSError:
        return None
    return int(match.group(1)) if match else None


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    return None if name is None else getattr(ctypes.CDLL(name), "malloc_trim", None)


def _release_free_heap() -> None:
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


def _reset_host_peak() -> int | None:
    """Resident kB now, after resetting the high-water mark; None when the reset is impossible."""
    _release_free_heap()
    try:
        _CLEAR_REFS.write_text(_RESET_PEAK)
    except OSError:
        return None
    return _status_kb("VmRSS")


@contextmanager
def measure(device: torch.device) -> Iterator[Measured]:
    """Time a block (device work included) and record its host and device peaks."""
    result = Measured()
    cuda = device.type == "cuda"
    sync(device)
    if cuda:
        torch.cuda.reset_peak_memory_stats(device)
        device_start = torch.cuda.memory_allocated(device)
    host_start = _reset_host_peak()
    start = time.perf_counter()
    try:
        yield result
    finally:
        sync(device)
        result.seconds = time.perf_counter() - start
        peak = _status_kb("VmHWM") if host_start is not None else None
        if peak is not None:
            result.host_peak_mb = max(0, peak - host_start) * 1024 / _MB
        if cuda:
            result.device_peak_mb = (torch.cuda.max_memory_allocated(device) - device_start) / _MB
