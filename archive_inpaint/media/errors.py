"""The single exception type of the media layer.

Callers (CLI, pipeline) catch one class to turn bad input into a clean user
message instead of a traceback, so every problem with a user-supplied file is
reported as a MediaError whose text already names the file(s) involved.
"""

from __future__ import annotations

from pathlib import Path


class MediaError(ValueError):
    """A media file (or pair of files) is missing, unreadable or inconsistent."""


def quote(path: str | Path) -> str:
    """Render a path the same way in every message: the text the caller gave, in quotes."""
    return f"'{path}'"
