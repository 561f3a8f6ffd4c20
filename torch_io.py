"""The project's torch files (theta0, a round's weights, the caches): written whole or not at all, and read
with one error type for a file that is damaged or not a torch file, whatever torch.load raised for it
(EOFError, KeyError, RuntimeError, UnpicklingError, ...). A file the system cannot read (permissions)
keeps its OSError, which names the file."""

from __future__ import annotations

import io
import sys
import warnings
from pathlib import Path
from typing import Any

import torch

from atomic_io import atomic_write_bytes


class TorchFileError(ValueError):
    """A file that is damaged or not a torch file; the message names the file and what torch.load said."""


def save_torch(path: Path, payload: Any) -> None:
    """torch.save, written whole or not at all."""
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def load_torch(path: Path) -> Any:
    """The file's content on the CPU, without running pickled code; TorchFileError when it is not a torch file."""
    try:
        with warnings.catch_warnings():  # a damaged file can make the unpickler warn as well
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True)
    except OSError:
        raise
    except Exception as exc:  # noqa: BLE001 (a damaged or foreign file raises any of a dozen types)
        raise TorchFileError(f"{path} is damaged or not a torch file ({type(exc).__name__})") from None


def load_cache(path: Path, what: str) -> Any | None:
    """A cache file's content; None when it is missing, or damaged (then rebuilt, saying so in one line)."""
    if not path.is_file():
        return None
    try:
        return load_torch(path)
    except (TorchFileError, OSError) as error:
        problem = error if isinstance(error, TorchFileError) else f"{path} cannot be read ({error.strerror})"
        print(f"warning: {what} {problem}: rebuilding it", file=sys.stderr, flush=True)
        return None
