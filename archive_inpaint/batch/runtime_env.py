"""Runtime environments for batch jobs on stock Ray clusters, checked before submission.

A job's runtime environment is shown to anyone who can read the Ray dashboard, and its local
``working_dir`` / ``py_modules`` are zipped and uploaded through the head with every submission.
So: fields Ray does not know (Ray would fail only when the job starts), secrets in ``env_vars`` or
in URLs, and large local packages are refused here with an error naming the file and the key.
"""

from __future__ import annotations

import difflib
import json
import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

# A local working_dir or py_modules entry is zipped and uploaded through the head with every
# submission. Code fits easily; manifests and media do not belong there (they stay in object
# storage, read by the shots where they run).
MAX_LOCAL_PACKAGE_BYTES = 1024 * 1024


# Names of variables that hold credentials. Long words match anywhere in the name; short ones
# only as a whole part of it (TOKEN in AWS_SESSION_TOKEN, not in TOKENIZERS_PARALLELISM).
_SECRET_WORDS = ("SECRET", "PASSWORD", "PASSWD", "PASSPHRASE", "CREDENTIAL", "PRIVATE_KEY",
                 "PRIVATEKEY", "ACCESS_KEY", "ACCESSKEY", "API_KEY", "APIKEY", "AUTH_KEY")
_SECRET_PARTS = {"TOKEN", "SESSION", "PASS", "PAT", "COOKIE", "SAS", "SIGNATURE"}
# Credentials carried inside a value: a password in a URL (https://user:pw@host, also pip's
# --index-url) or a signed URL (S3/GCS presigned, Azure SAS), itself a credential until it expires.
_SECRET_IN_VALUE = re.compile(
    r"[a-z][a-z0-9+.-]*://[^/\s:@]+:[^/\s@]+@|x-amz-signature=|x-amz-credential=|x-goog-signature=|[?&]sig=",
    re.IGNORECASE,
)


def _looks_secret(name: str) -> bool:
    # camelCase names split like snake_case ones: awsSecretKey -> AWS_SECRET_KEY.
    upper = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).upper()
    parts = set(re.split(r"[^A-Z0-9]+", upper))
    return any(word in upper for word in _SECRET_WORDS) or bool(parts & _SECRET_PARTS)


def _strings(value: Any, key: str) -> Iterator[tuple[str, str]]:
    """Every string in a nested value, with a dotted key saying where it is."""
    if isinstance(value, str):
        yield key, value
    elif isinstance(value, Mapping):
        for name, item in value.items():
            yield from _strings(item, f"{key}.{name}")
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            yield from _strings(item, f"{key}[{index}]")


def _refuse_secrets(data: Mapping[str, Any], source: str) -> None:
    env_vars = data.get("env_vars") or {}
    for name in env_vars:
        if _looks_secret(str(name)):
            raise ValueError(
                f"{source}: env_vars.{name} looks like a secret; a job's runtime environment is "
                "shown to anyone who can read the Ray dashboard. Give the nodes the credential "
                "instead (instance or pod role, Kubernetes secret, AWS config on the nodes)."
            )
    for key, text in _strings(dict(data), "runtime_env"):
        if _SECRET_IN_VALUE.search(text):
            raise ValueError(
                f"{source}: {key.removeprefix('runtime_env.')} holds a credential (a password or "
                "signature in a URL); a job's runtime environment is shown to anyone who can read "
                "the Ray dashboard. Configure it on the nodes instead (pip.conf, roles, secrets)."
            )


def _is_remote(uri: str) -> bool:
    # Ray fetches s3://, gs://, https://... packages itself; file:// and plain paths are uploaded.
    return "://" in uri and not uri.startswith("file://")


def _local_size(path: Path, limit: int) -> int:
    """Bytes under ``path``; stops counting once past ``limit`` (a big tree need not be walked)."""
    if path.is_file():
        return path.stat().st_size
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            file = Path(root, name)
            if not file.is_symlink():
                total += file.stat().st_size
            if total > limit:
                return total
    return total


def _refuse_big_uploads(data: Mapping[str, Any], source: str) -> None:
    local: list[tuple[str, str]] = []
    if isinstance(data.get("working_dir"), str):
        local.append(("working_dir", data["working_dir"]))
    for index, module in enumerate(data.get("py_modules") or []):
        if isinstance(module, str):
            local.append((f"py_modules[{index}]", module))
    total = 0
    for key, uri in local:
        if _is_remote(uri):
            continue
        # Relative to the current directory, as Ray's client resolves them.
        path = Path(uri.removeprefix("file://")).expanduser()
        if not path.exists():
            raise ValueError(f"{source}: {key} {uri!r} does not exist")
        total += _local_size(path, MAX_LOCAL_PACKAGE_BYTES)
        if total > MAX_LOCAL_PACKAGE_BYTES:
            raise ValueError(
                f"{source}: {key} {uri!r} puts more than {MAX_LOCAL_PACKAGE_BYTES // 1024} KiB of "
                "local files into the job, which uploads them through the head with every "
                "submission. Manifests and media stay in object storage; give code as a package "
                "(pip) or an s3://... zip or wheel."
            )


def _refuse_unknown_fields(data: Mapping[str, Any], source: str) -> None:
    from ray.runtime_env import RuntimeEnv

    # Ray itself accepts any other field as a plugin's and fails only when the job starts.
    public = sorted(name for name in RuntimeEnv.known_fields if not name.startswith("_"))
    for name in data:
        if name not in RuntimeEnv.known_fields:
            close = difflib.get_close_matches(str(name), public, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ValueError(
                f"{source}: unknown runtime-environment field {name!r}{hint}; "
                f"Ray's fields are {', '.join(public)}"
            )


def validate_runtime_env(data: Any, source: str = "runtime_env") -> dict[str, Any]:
    """Check a runtime environment for a job of this package; returns it as a plain dict.

    Ray's own ``RuntimeEnv`` checks the fields' types; on top of that, fields Ray does not know,
    secrets in ``env_vars`` or URLs, and large local ``working_dir`` / ``py_modules`` are refused
    with a ValueError naming ``source`` and the key."""
    from ray.runtime_env import RuntimeEnv

    if not isinstance(data, Mapping):
        raise ValueError(f"{source}: a runtime environment is a mapping of fields, got {type(data).__name__}")
    _refuse_unknown_fields(data, source)
    try:
        RuntimeEnv(**data)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{source}: invalid runtime environment: {error}") from None
    _refuse_secrets(data, source)
    _refuse_big_uploads(data, source)
    return dict(data)


def load_runtime_env(path: str) -> dict[str, Any]:
    """Read a runtime environment from a YAML or JSON file (``.json``: JSON, else YAML) and
    validate it with :func:`validate_runtime_env`; errors are ValueErrors naming the file.

    The check imports Ray: call ``remote.use_token`` before it."""
    import yaml

    file = Path(path)
    try:
        text = file.read_text()
    except OSError as error:
        raise ValueError(f"{path}: cannot read the runtime environment: {error.strerror or error}") from None
    is_json = file.suffix.lower() == ".json"
    try:
        data = json.loads(text) if is_json else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as error:
        raise ValueError(f"{path}: not valid {'JSON' if is_json else 'YAML'}: {error}") from None
    return validate_runtime_env({} if data is None else data, path)
