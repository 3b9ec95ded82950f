"""Atomic file writes: a crash or a concurrent writer never leaves a partial file at the target."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import torch


def atomic_write(target: str | os.PathLike, write: Callable[[BinaryIO], None]) -> Path:
    """Call `write` on a new temporary file beside `target`, then move it onto `target`.

    The temporary name is random and opened exclusively, so concurrent writers never share it,
    and unlike `tempfile.mkstemp` (mode 0600) the file gets the permissions the umask allows.
    On any error the temporary file is removed and the error re-raised; `target` keeps its
    previous content.
    """
    target = Path(target)
    temporary = target.with_name(f".{target.name}.{secrets.token_hex(8)}.tmp")
    file = open(temporary, "xb")
    try:
        with file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return target


def atomic_write_text(target: str | os.PathLike, text: str) -> Path:
    """Write UTF-8 `text` to `target` atomically."""
    return atomic_write(target, lambda file: file.write(text.encode("utf-8")))


def atomic_torch_save(data: object, target: str | os.PathLike) -> Path:
    """`torch.save` `data` to `target` atomically."""
    return atomic_write(target, lambda file: torch.save(data, file))
