"""Provenance: what an archivist needs to document a restoration step and check it later.

Content hashes (SHA-256) of every input and output file, so a file can be verified years on;
the versions of the libraries that decoded and encoded it (FFmpeg's included); the device.
"""

from __future__ import annotations

import hashlib
import json
import platform
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the pipeline imports this module: types only, no import cycle
    import torch

    from archive_inpaint.config import MethodConfig
    from archive_inpaint.pipeline import FileOutputs, InpaintResult

_CHUNK = 8 << 20


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def content_digest(path: str | Path) -> dict[str, Any]:
    """Size and SHA-256 of a file; for a folder (an image sequence) the same per file, plus one
    digest over the names and digests in order, which identifies the whole sequence."""
    target = Path(path)
    if not target.is_dir():
        return {"path": str(target), "size": target.stat().st_size, "sha256": file_sha256(target)}
    files = sorted(p for p in target.rglob("*") if p.is_file() and not p.name.startswith("."))
    entries = [
        {"name": str(p.relative_to(target)), "size": p.stat().st_size, "sha256": file_sha256(p)}
        for p in files
    ]
    combined = hashlib.sha256()
    for entry in entries:
        combined.update(f"{entry['name']}\0{entry['sha256']}\n".encode())
    return {
        "path": str(target),
        "size": sum(entry["size"] for entry in entries),
        "sha256": combined.hexdigest(),
        "files": entries,
    }


def library_versions() -> dict[str, Any]:
    import av
    import cv2
    import numpy as np
    import torch

    from archive_inpaint import __version__

    versions: dict[str, Any] = {
        "archive_inpaint": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "av": av.__version__,
        "ffmpeg": {name: ".".join(map(str, value)) for name, value in av.library_versions.items()},
        "opencv": cv2.__version__,
        "numpy": np.__version__,
    }
    for name in ("ray", "pyarrow", "fsspec", "s3fs"):
        try:
            module = __import__(name)
        except ImportError:
            continue
        versions[name] = getattr(module, "__version__", "unknown")
    return versions


def versions_line(versions: dict[str, Any]) -> str:
    """``library_versions()`` on one line (FFmpeg's own libraries left out: PyAV's version names
    the build)."""
    return ", ".join(f"{name} {version}" for name, version in versions.items() if name != "ffmpeg")


def device_description(device: Any) -> dict[str, Any]:
    import torch

    if getattr(device, "type", None) == "cuda":
        return {"type": "cuda", "name": torch.cuda.get_device_name(device), "cuda": torch.version.cuda}
    return {"type": "cpu", "name": platform.processor() or platform.machine(), "threads": torch.get_num_threads()}


def shot_provenance(
    outputs: FileOutputs,
    result: InpaintResult,
    config: MethodConfig,
    preset: str,
    device: torch.device,
    seconds: float,
) -> dict[str, Any]:
    """The per-shot record: media (source, range, mask, output, hashes), method and every
    parameter, versions, device, timings."""
    return {
        "media": outputs.media,
        "method": result.method,
        "preset": preset,
        "config": config.to_dict(),
        "method_details": result.provenance,
        "iterations": result.iterations,
        "resumed_from": result.resumed_from,
        "final_loss": result.loss_history[-1] if result.loss_history else None,
        "stages": result.stages,
        "tiles": result.tiles,
        "outputs": [path.name for path in outputs.files()],
        "versions": library_versions(),
        "device": device_description(device),
        "host": platform.node(),
        "timings": {
            "train_seconds": result.train_seconds,
            "fill_seconds": result.fill_seconds,
            "total_seconds": seconds,
        },
    }


def write_provenance_file(record: dict[str, Any], path: Path) -> Path:
    from archive_inpaint.media.atomic import atomic_file

    with atomic_file(path) as temp:
        temp.write_text(json.dumps(record, indent=2, sort_keys=True, default=str) + "\n")
    return path
