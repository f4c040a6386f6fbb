"""Atomic creation of output files and directories.

Outputs are built under a hidden temporary name in the destination's own
directory and renamed into place only once complete.  A rename within one
filesystem is atomic, so a watcher or a downstream job never picks up a
half-written video, and a crash or encoder error leaves no partial output.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import MediaError, quote


def _temp_sibling(target: Path, tag: str) -> Path:
    # Leading '.' hides it from folder listings (including our own image
    # folder reader); the suffix is kept so tools that look at the extension
    # (OpenCV, FFmpeg) still recognise the format.
    return target.with_name(f".{target.name}.{tag}-{secrets.token_hex(4)}{target.suffix}")


@contextmanager
def atomic_file(target: Path) -> Iterator[Path]:
    """Yield a temporary path to write; move it onto `target` on success."""
    if target.is_dir():
        raise MediaError(f"cannot write file {quote(target)}: a directory is in the way")
    target.parent.mkdir(parents=True, exist_ok=True)
    while True:
        temp = _temp_sibling(target, "tmp")
        try:
            # O_EXCL reserves the name; plain open (not mkstemp) keeps the
            # default permissions so the final file is not owner-only.
            os.close(os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            break
        except FileExistsError:
            continue
    try:
        yield temp
        _fsync(temp)
        os.replace(temp, target)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


@contextmanager
def atomic_directory(target: Path) -> Iterator[Path]:
    """Yield a temporary directory to fill; swap it in for `target` on success.

    An existing directory at `target` is replaced as a whole, so no stale
    frames from an earlier, longer render survive next to the new ones.
    """
    if target.exists() and not target.is_dir():
        raise MediaError(f"cannot write directory {quote(target)}: a file is in the way")
    target.parent.mkdir(parents=True, exist_ok=True)
    while True:
        temp = _temp_sibling(target, "tmp")
        try:
            temp.mkdir()
            break
        except FileExistsError:
            continue
    try:
        yield temp
        for entry in temp.iterdir():
            if entry.is_file():
                _fsync(entry)
        _swap_in(temp, target)
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise


def _fsync(path: Path) -> None:
    # Flush data before the rename: otherwise a power cut can leave the new
    # name pointing at an empty file, defeating the point of renaming.
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def _swap_in(temp: Path, target: Path) -> None:
    # os.replace cannot overwrite a non-empty directory, so move the old one
    # aside first; the window without a target is two renames long.
    if not target.exists():
        os.replace(temp, target)
        return
    old = _temp_sibling(target, "old-tmp")
    os.replace(target, old)
    try:
        os.replace(temp, target)
    except BaseException:
        os.replace(old, target)  # put the previous output back
        raise
    shutil.rmtree(old, ignore_errors=True)
