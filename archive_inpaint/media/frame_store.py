"""Frame storage whose memory does not grow with the frame size.

A 100-frame 4K shot is 2.5 GB of uint8 RGB (5 GB at 16 bit), and its masks another 0.8 GB as
bools: held in RAM, a 4K shot would not run where a 1080p shot runs. A ``FrameStore`` keeps the
frames at their own dtype either in memory (small shots) or in a raw file on local scratch
(large shots), and hands out rows, regions and whole frames as ordinary arrays.

The disk store reads with ``os.pread`` rather than through a memory map on purpose: pages of a
mapping that have been touched count towards the process's resident set until they are evicted,
so a memory-mapped 4K shot would show its whole size in the peak RSS even though the data is
file-backed. Reads into private buffers keep the resident set bounded by what is in use.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

# Shots whose frames exceed this many bytes go to scratch disk unless told otherwise.
DEFAULT_IN_MEMORY_LIMIT = 1 << 30


class FrameStore:
    """(T, H, W, C) frames of one dtype, readable by frame, rows and region.

    Quacks enough like a read-only ndarray (``shape``, ``dtype``, ``ndim``, ``len``, iteration,
    integer indexing) for the media writer and the contact sheet to take it in place of one.
    """

    def __init__(self, shape: tuple[int, int, int, int], dtype: np.dtype | type, *, folder: Path | None) -> None:
        self.shape = tuple(int(n) for n in shape)
        self.dtype = np.dtype(dtype)
        self.ndim = 4
        self._frame_bytes = int(np.prod(self.shape[1:])) * self.dtype.itemsize
        self._row_bytes = self.shape[2] * self.shape[3] * self.dtype.itemsize
        self._memory: np.ndarray | None = None
        self._fd: int | None = None
        self.path: Path | None = None
        if folder is None:
            self._memory = np.zeros(self.shape, dtype=self.dtype)
        else:
            folder.mkdir(parents=True, exist_ok=True)
            handle, name = tempfile.mkstemp(prefix="frames-", suffix=".raw", dir=folder)
            self._fd, self.path = handle, Path(name)
            os.ftruncate(handle, self._frame_bytes * self.shape[0])

    # -- construction ---------------------------------------------------------------------

    @classmethod
    def create(
        cls,
        shape: tuple[int, int, int, int],
        dtype: np.dtype | type,
        *,
        scratch: Path | None = None,
        in_memory_limit: int = DEFAULT_IN_MEMORY_LIMIT,
    ) -> FrameStore:
        """In memory when the frames fit under ``in_memory_limit`` bytes, else on scratch disk
        (``scratch``, or the system temporary folder)."""
        size = int(np.prod(shape)) * np.dtype(dtype).itemsize
        if size <= in_memory_limit:
            return cls(shape, dtype, folder=None)
        return cls(shape, dtype, folder=scratch if scratch is not None else Path(tempfile.gettempdir()))

    @classmethod
    def from_array(cls, frames: np.ndarray) -> FrameStore:
        """Wrap frames already in memory (T, H, W) or (T, H, W, C) without copying them."""
        store = cls.__new__(cls)
        view = frames if frames.ndim == 4 else frames[..., None]
        store.shape, store.dtype, store.ndim = tuple(view.shape), view.dtype, 4
        store._frame_bytes = int(np.prod(view.shape[1:])) * view.dtype.itemsize
        store._row_bytes = view.shape[2] * view.shape[3] * view.dtype.itemsize
        store._memory, store._fd, store.path = view, None, None
        return store

    @property
    def on_disk(self) -> bool:
        return self._fd is not None

    @property
    def frame_bytes(self) -> int:
        return self._frame_bytes

    @property
    def num_frames(self) -> int:
        return self.shape[0]

    @property
    def height(self) -> int:
        return self.shape[1]

    @property
    def width(self) -> int:
        return self.shape[2]

    # -- access -----------------------------------------------------------------------------

    def write(self, index: int, frame: np.ndarray) -> None:
        # Checked here because a pwrite past the end would silently grow the scratch file.
        if not 0 <= index < self.shape[0]:
            raise IndexError(f"frame {index} of a {self.shape[0]}-frame store")
        frame = np.asarray(frame, dtype=self.dtype).reshape(self.shape[1:])
        if self._memory is not None:
            self._memory[index] = frame
            return
        data = np.ascontiguousarray(frame).tobytes()
        written = os.pwrite(self._fd, data, index * self._frame_bytes)
        if written != len(data):
            raise OSError(f"short write to the frame store {self.path}: {written} of {len(data)} bytes")

    def resize(self, num_frames: int) -> None:
        """Change the frame count, keeping the first ``min(old, new)`` frames; new frames are zero.

        Readers size a store from the frame count a container declares, which is only a hint:
        the store is then grown when more frames arrive and cut to the count actually decoded.
        On disk this only changes the scratch file's length. In memory, growing copies into a
        larger array, while shrinking keeps a view: the dropped tail was allocated zeroed and
        never written, so its pages were never made resident and cost no memory.
        """
        if num_frames < 0:
            raise ValueError(f"num_frames must be >= 0, got {num_frames}")
        shape = (int(num_frames), *self.shape[1:])
        if self._memory is not None:
            if num_frames <= self.shape[0]:
                self._memory = self._memory[:num_frames]
            else:
                grown = np.zeros(shape, dtype=self.dtype)
                grown[: self.shape[0]] = self._memory
                self._memory = grown
        else:
            os.ftruncate(self._fd, self._frame_bytes * num_frames)
        self.shape = shape

    def rows(self, index: int, top: int, bottom: int) -> np.ndarray:
        """Rows [top, bottom) of frame ``index`` as a (rows, W, C) array (a copy on disk)."""
        top, bottom = max(0, top), min(self.shape[1], bottom)
        if self._memory is not None:
            return self._memory[index, top:bottom]
        rows = np.empty((bottom - top, *self.shape[2:]), dtype=self.dtype)
        # Straight into the array: a 4K frame read through a bytes object was held twice.
        count = os.preadv(self._fd, [memoryview(rows).cast("B")], index * self._frame_bytes + top * self._row_bytes)
        if count != rows.nbytes:
            raise OSError(f"short read from the frame store {self.path}")
        return rows

    def region(self, index: int, top: int, left: int, height: int, width: int) -> np.ndarray:
        """The (height, width, C) region at (top, left); it must lie inside the frame."""
        if top < 0 or left < 0 or top + height > self.shape[1] or left + width > self.shape[2]:
            raise IndexError(
                f"region {height}x{width} at ({top}, {left}) is outside the {self.shape[1]}x{self.shape[2]} frame"
            )
        return self.rows(index, top, top + height)[:, left : left + width]

    def frame(self, index: int) -> np.ndarray:
        return self.rows(index, 0, self.shape[1])

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, index: int) -> np.ndarray:
        if not isinstance(index, (int, np.integer)):
            raise TypeError("a FrameStore is indexed by frame number only")
        if not -self.shape[0] <= index < self.shape[0]:
            raise IndexError(f"frame {index} of a {self.shape[0]}-frame store")
        return self.frame(int(index) % self.shape[0])

    def __iter__(self) -> Iterator[np.ndarray]:
        for index in range(self.shape[0]):
            yield self.frame(index)

    def to_array(self) -> np.ndarray:
        """Every frame in one array: for small shots and tests only."""
        if self._memory is not None:
            return self._memory
        return np.stack(list(self))

    def close(self) -> None:
        """Delete the scratch file (in-memory stores have nothing to release)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
            if self.path is not None:
                self.path.unlink(missing_ok=True)

    def __enter__(self) -> FrameStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # interpreter shutdown: os may already be gone
            pass


# What the writers and the contact sheet take: frames in memory, or a store read frame by frame.
Frames = np.ndarray | FrameStore
