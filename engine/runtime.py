"""Device choice, seeding and deterministic mode: the process-wide settings of a run."""

from __future__ import annotations

import os
import random
from contextlib import AbstractContextManager, nullcontext

import numpy as np
import torch


class DeviceError(RuntimeError):
    """The requested device cannot be used."""


def select_device(device: str, cudaid: str) -> torch.device:
    """auto: CUDA when available, else CPU; cuda: fail clearly when there is none."""
    if device == "cpu" or (device == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise DeviceError("device cuda requested but CUDA is not available: use --device cpu or --device auto")
    try:
        index = int(cudaid)
    except ValueError:
        raise DeviceError(f"cudaid '{cudaid}' is not a device index: pass --cudaid 0") from None
    if not 0 <= index < torch.cuda.device_count():
        raise DeviceError(f"cudaid {index} does not exist ({torch.cuda.device_count()} CUDA devices): "
                          "pass a valid --cudaid")
    return torch.device("cuda", index)


def set_deterministic(enabled: bool) -> None:
    """Same seed and machine -> same numbers. Needs the cuBLAS workspace setting on CUDA."""
    if enabled:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(enabled, warn_only=False)
    torch.backends.cudnn.deterministic = enabled
    torch.backends.cudnn.benchmark = not enabled


def seed_everything(seed: int) -> None:
    """Seed the global generators (model initialisation); everything else draws from explicit ones."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def derived_seed(seed: int, *parts: int) -> int:
    """A seed for one purpose of one round (e.g. (seed, round, cycle, PURPOSE)), stable across runs."""
    return int(np.random.SeedSequence([seed, *parts]).generate_state(1, dtype=np.uint32)[0])


def cpu_generator(seed: int) -> torch.Generator:
    gen = torch.Generator()
    gen.manual_seed(seed)
    return gen


def autocast(device: torch.device, bf16: bool) -> AbstractContextManager:
    """bf16 autocast on CUDA when asked; a no-op elsewhere."""
    if bf16 and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return nullcontext()


def sync(device: torch.device) -> None:
    """Wait for queued device work (for honest timings)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
