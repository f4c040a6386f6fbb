"""fsspec helpers: one code path for local paths and object stores (s3:// through s3fs).

Credentials and endpoints come from the standard AWS configuration (environment variables such as
AWS_ENDPOINT_URL / AWS_ACCESS_KEY_ID, shared config files, instance or pod roles): nothing is passed
explicitly here, so nothing secret can leak into logs, provenance or results.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fsspec
from fsspec import AbstractFileSystem
from fsspec.implementations.local import LocalFileSystem


def is_local(uri: str) -> bool:
    """A plain path or file:// URI, i.e. something the media layer can open directly."""
    protocol = fsspec.utils.get_protocol(uri)
    return protocol in ("file", "local")


def filesystem(uri: str) -> tuple[AbstractFileSystem, str]:
    """The filesystem for ``uri`` and the path inside it.

    Remote filesystems are made without the listings cache and outside the instance cache: marker
    checks must see objects written moments ago by other processes (a cached listing hides them).
    """
    if is_local(uri):
        return LocalFileSystem(), LocalFileSystem._strip_protocol(uri)
    fs, path = fsspec.core.url_to_fs(uri, use_listings_cache=False, skip_instance_cache=True)
    return fs, path


def join(base: str, *parts: str) -> str:
    """Join URI segments with '/', which every fsspec filesystem (and POSIX) understands."""
    return "/".join([base.rstrip("/"), *(part.strip("/") for part in parts)])


def local_path(uri: str) -> Path:
    return Path(LocalFileSystem._strip_protocol(uri))


def absolute(uri: str) -> str:
    """Local paths made absolute (Ray workers need not share the driver's working directory);
    other URIs unchanged."""
    return str(local_path(uri).resolve()) if is_local(uri) else uri


def exists(uri: str) -> bool:
    fs, path = filesystem(uri)
    return bool(fs.exists(path))


@dataclass(frozen=True)
class ObjectStat:
    """What identifies an input's content without reading it: size and mtime or ETag."""

    uri: str
    size: int
    version: str  # mtime for local files, ETag (or last-modified) for objects

    def to_dict(self) -> dict[str, Any]:
        return {"uri": self.uri, "size": self.size, "version": self.version}


def _version(entry: dict[str, Any]) -> str:
    for key in ("ETag", "etag", "mtime", "LastModified", "last_modified", "created"):
        if entry.get(key) is not None:
            return str(entry[key]).strip('"')
    return ""


def stat(uri: str) -> ObjectStat:
    """Size and version of a file, or of a folder as a whole (summed sizes, versions of every file)."""
    fs, path = filesystem(uri)
    info = fs.info(path)
    if info.get("type") != "directory":
        return ObjectStat(uri, int(info.get("size") or 0), _version(info))
    files = fs.find(path, detail=True)
    size = sum(int(entry.get("size") or 0) for entry in files.values())
    versions = ",".join(f"{name.rsplit('/', 1)[-1]}:{_version(entry)}" for name, entry in sorted(files.items()))
    return ObjectStat(uri, size, versions)


def fetch(uri: str, scratch: Path) -> Path:
    """A local path holding ``uri``'s content: the path itself when local, else a download into
    ``scratch`` (a folder is downloaded recursively, keeping its file names)."""
    if is_local(uri):
        return local_path(uri)
    fs, path = filesystem(uri)
    target = scratch / path.rstrip("/").rsplit("/", 1)[-1]
    if fs.isdir(path):
        target.mkdir(parents=True, exist_ok=True)
        for remote in fs.find(path):
            relative = remote[len(path.rstrip("/")) + 1 :]
            (target / relative).parent.mkdir(parents=True, exist_ok=True)
            fs.get_file(remote, str(target / relative))
    else:
        scratch.mkdir(parents=True, exist_ok=True)
        fs.get_file(path, str(target))
    return target


def upload(local: Path, uri: str) -> None:
    """Copy one local file to ``uri`` whole. A single PUT (or completed multipart upload) is atomic on
    object stores, so readers never see a partial object; local copies go through a temporary name."""
    fs, path = filesystem(uri)
    if isinstance(fs, LocalFileSystem):
        target = Path(path)
        if target.resolve() == local.resolve():
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        temp = target.with_name(f".tmp-{target.name}")
        fs.put_file(str(local), str(temp))
        os.replace(temp, target)
        return
    fs.put_file(str(local), path)


def upload_tree(local: Path, uri: str) -> None:
    """``upload`` for a file or a whole folder (an image-sequence output), file by file; the
    shot's ``_SUCCESS.json``, written last, is what says the folder is complete."""
    if not local.is_dir():
        upload(local, uri)
        return
    for path in sorted(local.rglob("*")):
        if path.is_file():
            upload(path, join(uri, *path.relative_to(local).parts))


def write_bytes(uri: str, data: bytes) -> None:
    fs, path = filesystem(uri)
    if isinstance(fs, LocalFileSystem):
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        temp = target.with_name(f".tmp-{target.name}")
        temp.write_bytes(data)
        os.replace(temp, target)
        return
    fs.pipe_file(path, data)


def write_json(uri: str, document: dict[str, Any]) -> None:
    write_bytes(uri, (json.dumps(document, indent=2, sort_keys=True) + "\n").encode())


def read_json(uri: str) -> dict[str, Any] | None:
    """The JSON document at ``uri``, or None when there is none (or it is unreadable)."""
    fs, path = filesystem(uri)
    try:
        with fs.open(path, "rb") as stream:
            document = json.load(stream)
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    return document if isinstance(document, dict) else None


def list_names(uri: str) -> list[str]:
    """Base names directly under a folder URI; empty when it does not exist."""
    fs, path = filesystem(uri)
    try:
        return sorted(entry.rstrip("/").rsplit("/", 1)[-1] for entry in fs.ls(path, detail=False))
    except FileNotFoundError:
        return []


def remove(uri: str) -> None:
    fs, path = filesystem(uri)
    try:
        fs.rm_file(path)
    except FileNotFoundError:
        pass
