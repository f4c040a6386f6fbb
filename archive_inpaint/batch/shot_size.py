"""How big a shot is (frames, height, width), read from its headers where it lies (local or object
storage) without fetching the whole file: what the scheduler needs to order shots and size their
GPU requests before any worker has seen them."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import PurePosixPath

import av
import cv2
import numpy as np

from archive_inpaint.batch import storage
from archive_inpaint.media.images import IMAGE_SUFFIXES

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ShotSize:
    frames: int
    height: int
    width: int

    @property
    def pixels(self) -> int:
        return self.height * self.width


def probe_shot_size(uri: str, start: int = 0, end: int | None = None) -> ShotSize | None:
    """The size of the shot's range ``[start, end)`` of the video or image folder at ``uri``; None
    when it cannot be told from the headers (the shot's own task reports any real problem)."""
    try:
        fs, path = storage.filesystem(uri)
        if fs.isdir(path):
            size = _sequence_size(fs, path)
        else:
            with fs.open(path, "rb") as stream:
                size = _video_size(stream)
    except Exception as error:  # noqa: BLE001  scheduling falls back to a default; the task decides
        log.info("could not size %s from its headers: %s", uri, error)
        return None
    if size is None:
        return None
    last = size.frames if end is None else min(end, size.frames)
    return ShotSize(max(last - start, 0), size.height, size.width)


def _video_size(stream: object) -> ShotSize | None:
    with av.open(stream) as container:
        video = container.streams.video[0]
        frames = video.frames
        if not frames:
            # Matroska (FFV1) and some MOVs carry no frame count: duration x rate is as good here.
            rate = video.average_rate or video.guessed_rate
            if video.duration is not None and video.time_base is not None:
                seconds = float(video.duration * video.time_base)
            elif container.duration is not None:
                seconds = container.duration / av.time_base
            else:
                return None
            frames = round(seconds * float(rate)) if rate else 0
        width, height = video.codec_context.width, video.codec_context.height
        return ShotSize(int(frames), int(height), int(width)) if frames and width and height else None


def _sequence_size(fs: object, path: str) -> ShotSize | None:
    names = sorted(
        name
        for name in fs.ls(path, detail=False)  # type: ignore[attr-defined]
        if PurePosixPath(name).suffix.lower() in IMAGE_SUFFIXES and not PurePosixPath(name).name.startswith(".")
    )
    if not names:
        return None
    with fs.open(names[0], "rb") as stream:  # type: ignore[attr-defined]
        data = np.frombuffer(stream.read(), np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if image is None:
        # DPX and other formats OpenCV does not read: FFmpeg's image decoders do.
        with fs.open(names[0], "rb") as stream, av.open(stream) as container:  # type: ignore[attr-defined]
            context = container.streams.video[0].codec_context
            return ShotSize(len(names), context.height, context.width)
    return ShotSize(len(names), image.shape[0], image.shape[1])
