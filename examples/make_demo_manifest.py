"""Regenerate examples/demo_manifest.parquet: the README's batch demo, one shot (`carphone`) on the
shipped damaged clip and its mask.

The URIs are relative, and relative paths in a manifest are relative to the manifest's own folder,
so the manifest works from any working directory (and keeps working if examples/ is copied
elsewhere or uploaded to a bucket beside its clips):

    python examples/make_demo_manifest.py
    archive-inpaint manifest validate examples/demo_manifest.parquet
"""

from __future__ import annotations

from pathlib import Path

from archive_inpaint.batch.manifest import ShotSpec, manifest_table, write_table

HERE = Path(__file__).resolve().parent
MANIFEST = HERE / "demo_manifest.parquet"
SHOTS = [ShotSpec(shot_id="carphone", video_uri="carphone_damaged.mkv", mask_uri="carphone_mask.mkv")]


def main() -> None:
    write_table(manifest_table(SHOTS), str(MANIFEST))
    print(f"wrote {MANIFEST}: {len(SHOTS)} shot(s)")


if __name__ == "__main__":
    main()
