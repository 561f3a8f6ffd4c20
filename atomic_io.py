"""Writing files so that readers see the old content or the new one, never a partial file.

Every writer of the project goes through `atomic_write`: the content goes to a temporary file in
the destination folder, which then replaces the destination with one rename. A failure leaves the
destination untouched and removes the temporary file.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

# Results are shared: readable by everyone (mkstemp alone would make them private).
FILE_MODE = 0o644


def atomic_write(path: Path, write: Callable[[Path], None], mode: int = FILE_MODE) -> None:
    """Call `write(temporary path)`, then rename the temporary file to `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        write(tmp)
        with open(tmp, "rb") as handle:  # on disk before the rename, so a crash cannot publish an empty file
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except OSError as error:
        if error.filename is None:  # a failed write (no space left on the disk) names no file: name the one
            error.filename = str(path)
        raise
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_bytes(path: Path, data: bytes, mode: int = FILE_MODE) -> None:
    atomic_write(path, lambda tmp: tmp.write_bytes(data), mode)


def atomic_write_text(path: Path, text: str, mode: int = FILE_MODE) -> None:
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"), mode)
