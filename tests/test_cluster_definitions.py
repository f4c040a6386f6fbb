"""The deployment definitions under cluster/, checked by the code that will read them where it is at
hand: Ray's cluster-config schema and validation, KubeRay's translation of a RayCluster into an
autoscaling config (the one Ray's autoscaler runs on), the real command line parser for the job's
entrypoint; and, across files, that they agree (image, Ray version, scratch path, metrics port).

No network, no Docker, no kubectl: what those would check (the image builds, the manifests pass the
API server's CRD schemas) is out of reach here and stated in cluster/README.md.
"""

from __future__ import annotations

import copy
import json
import re
import shlex
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import typer
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version
from ray.autoscaler._private.kuberay.autoscaling_config import _derive_autoscaling_config_from_ray_cr
from ray.autoscaler._private.util import prepare_config, validate_config

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10 has no tomllib; tomli is the same parser
    tomllib = pytest.importorskip("tomli")

from archive_inpaint.batch.metrics import (
    PREFIX,
    SHOT_GPU_MEMORY,
    SHOT_LOSS,
    SHOT_PROGRESS,
    SHOT_SECONDS,
    SHOTS_FAILED,
    SHOTS_STARTED,
    SHOTS_SUCCEEDED,
    TRAINING_ITERATIONS,
)

ROOT = Path(__file__).resolve().parents[1]
CLUSTER = ROOT / "cluster"
DOCKERFILE = CLUSTER / "Dockerfile"
DOCKERIGNORE = CLUSTER / "Dockerfile.dockerignore"
LAUNCHER = CLUSTER / "aws" / "cluster-launcher.yaml"
RAYCLUSTER = CLUSTER / "kuberay" / "raycluster.yaml"
RAYJOB = CLUSTER / "kuberay" / "rayjob.yaml"
DASHBOARD = CLUSTER / "grafana" / "archive-inpaint-dashboard.json"
GUIDE = CLUSTER / "README.md"
KUBE_FILES = (RAYCLUSTER, RAYJOB)

METRICS_PORT = 8080
IRSA_ANNOTATION = "eks.amazonaws.com/role-arn"
# Key material that must never be in a definition: AWS access key ids (long-term AKIA, temporary
# ASIA) and private keys.
KEY_MATERIAL = re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b|-----BEGIN [A-Z ]*PRIVATE KEY-----")
# Variable names that hold credentials: never given a literal value.
CREDENTIAL_NAME = re.compile(r"(?i)secret|password|passwd|token|credential|access_key|private_key|api_key")
# user:password@ in a URL (a pip index with credentials, say).
URL_USERINFO = re.compile(r"[a-z][a-z0-9+.-]*://[^/\s:@]+:[^/\s@]+@", re.IGNORECASE)


# ---- loading


def load_yaml_documents(path: Path) -> list[dict[str, Any]]:
    return [document for document in yaml.safe_load_all(path.read_text()) if document]


def only(documents: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    matching = [document for document in documents if document.get("kind") == kind]
    assert len(matching) == 1, f"expected one {kind}, found {len(matching)}"
    return matching[0]


def ray_cluster_cr(path: Path) -> dict[str, Any]:
    """The RayCluster as KubeRay's autoscaler would read it from the API server: the RayCluster
    itself, or the cluster a RayJob creates from its rayClusterSpec."""
    documents = load_yaml_documents(path)
    kinds = {document.get("kind") for document in documents}
    if "RayCluster" in kinds:
        return copy.deepcopy(only(documents, "RayCluster"))
    job = only(documents, "RayJob")
    return {
        "apiVersion": "ray.io/v1",
        "kind": "RayCluster",
        "metadata": {"name": job["metadata"]["name"], "namespace": job["metadata"]["namespace"]},
        "spec": copy.deepcopy(job["spec"]["rayClusterSpec"]),
    }


def service_account(path: Path) -> dict[str, Any]:
    return only(load_yaml_documents(path), "ServiceAccount")


def pod_templates(spec: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    yield "head", spec["headGroupSpec"]["template"]
    for group in spec["workerGroupSpecs"]:
        yield group["groupName"], group["template"]


def containers_with_env(document: Any) -> Iterator[dict[str, Any]]:
    """Every mapping with an ``env`` list anywhere in a manifest (containers, the autoscaler's
    options, the RayJob's submitter)."""
    if isinstance(document, dict):
        if isinstance(document.get("env"), list):
            yield document
        for value in document.values():
            yield from containers_with_env(value)
    elif isinstance(document, list):
        for value in document:
            yield from containers_with_env(value)


def strings(document: Any) -> Iterator[str]:
    if isinstance(document, dict):
        for key, value in document.items():
            yield str(key)
            yield from strings(value)
    elif isinstance(document, list):
        for value in document:
            yield from strings(value)
    elif document is not None:
        yield str(document)


# ---- the Dockerfile


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str
    line: int


def parse_dockerfile(text: str) -> list[Instruction]:
    """Instructions with their line continuations joined; comments (parser directives included)
    and blank lines dropped, as Docker does."""
    instructions: list[Instruction] = []
    parts: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if line.startswith("#") or (not line and not parts):
            continue
        if not parts:
            start = number
        if line.endswith("\\"):
            parts.append(line[:-1].strip())
            continue
        parts.append(line)
        keyword, _, args = " ".join(part for part in parts if part).partition(" ")
        instructions.append(Instruction(keyword.upper(), args.strip(), start))
        parts = []
    assert not parts, "the Dockerfile ends inside a line continuation"
    return instructions


def _expand(text: str, variables: dict[str, str]) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        return variables.get(name, match.group(0))

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", value, text)


def _assignments(args: str) -> list[tuple[str, str]]:
    tokens = shlex.split(args)
    if tokens and "=" not in tokens[0]:  # the legacy form: ENV NAME value...
        return [(tokens[0], " ".join(tokens[1:]))]
    pairs = [token.split("=", 1) if "=" in token else [token, ""] for token in tokens]
    return [(name, value) for name, value in pairs]


@dataclass
class DockerImage:
    """What the Dockerfile's last stage ends up with."""

    base: str
    args: dict[str, str]  # build args with their defaults, as seen by the last stage
    env: dict[str, str]
    user: str | None
    instructions: list[Instruction]

    def runs(self) -> list[str]:
        return [_expand(i.args, {**self.args, **self.env}) for i in self.instructions if i.keyword == "RUN"]

    def copies(self) -> list[tuple[int, list[str], str]]:
        """(index among the stage's instructions, sources, destination) of each COPY/ADD from the
        build context."""
        result = []
        for index, instruction in enumerate(self.instructions):
            if instruction.keyword not in ("COPY", "ADD"):
                continue
            tokens = [token for token in shlex.split(instruction.args) if not token.startswith("--")]
            result.append((index, tokens[:-1], _expand(tokens[-1], {**self.args, **self.env})))
        return result


def read_dockerfile() -> DockerImage:
    instructions = parse_dockerfile(DOCKERFILE.read_text())
    global_args: dict[str, str] = {}
    args: dict[str, str] = {}
    env: dict[str, str] = {}
    base = ""
    user: str | None = None
    stage: list[Instruction] = []
    seen_from = False
    for instruction in instructions:
        if instruction.keyword == "FROM":
            seen_from = True
            base = _expand(instruction.args.split()[0], global_args)
            args, env, user, stage = {}, {}, None, []
            continue
        stage.append(instruction)
        if instruction.keyword == "ARG":
            for name, default in _assignments(instruction.args):
                if not seen_from:
                    global_args[name] = default
                elif default:
                    args[name] = _expand(default, {**args, **env})
                else:
                    args[name] = global_args.get(name, "")
        elif instruction.keyword == "ENV":
            for name, value in _assignments(instruction.args):
                env[name] = _expand(value, {**args, **env})
        elif instruction.keyword == "USER":
            user = instruction.args.split(":")[0]
    assert seen_from, "no FROM in the Dockerfile"
    return DockerImage(base=base, args={**global_args, **args}, env=env, user=user, instructions=stage)


def pip_installs(run: str) -> list[list[str]]:
    """The argument lists of the ``pip install`` commands of a RUN line."""
    lexer = shlex.shlex(run, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    commands: list[list[str]] = [[]]
    for token in lexer:
        if token in ("&&", "||", ";", "|", "&"):
            commands.append([])
        else:
            commands[-1].append(token)
    return [
        tokens[2:] for tokens in commands if len(tokens) > 1 and tokens[0].endswith("pip") and tokens[1] == "install"
    ]


def package_pin(name: str) -> Requirement:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    for line in pyproject["project"]["dependencies"]:
        requirement = Requirement(line)
        if requirement.name == name:
            return requirement
    raise AssertionError(f"{name} is not a dependency in pyproject.toml")


def ray_image_version(image: str) -> tuple[Version, str]:
    match = re.fullmatch(r"rayproject/ray:(\d+\.\d+\.\d+)-py(\d)(\d+)(?:-(?:gpu|cu\d+))?", image)
    assert match, f"{image} is not a rayproject/ray image with an explicit version and Python"
    return Version(match.group(1)), f"{match.group(2)}.{match.group(3)}"


def scratch_path() -> str:
    tmpdir = read_dockerfile().env.get("TMPDIR")
    assert tmpdir and tmpdir.startswith("/"), "the image must set TMPDIR to the scratch mount path"
    return tmpdir


# ---- PromQL


# Words of PromQL that are not metric names: aggregation modifiers, set and vector-matching operators.
_PROMQL_WORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless", "offset"
}


def promql_metric_names(expr: str) -> set[str]:
    """The metric names an expression selects: identifiers that are neither functions nor PromQL
    words, once label matchers, range and subquery durations, grouping label lists, strings and
    numbers are taken out."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'', '""', expr)
    text = re.sub(r"\{[^{}]*\}", " ", text)
    text = re.sub(r"\[[^\[\]]*\]", " ", text)
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)", " ", text)
    text = re.sub(r"\$\{?\w+\}?", " ", text)
    text = re.sub(r"(?<![\w:])\d+(?:\.\d+)?(?:[eE][+-]?\d+)?", " ", text)
    names = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", text):
        if text[match.end() :].lstrip().startswith("("):
            continue  # a function (or an aggregation with its grouping after the arguments)
        if match.group(0) not in _PROMQL_WORDS:
            names.add(match.group(0))
    return names


def label_values_metric(query: str) -> set[str]:
    """The metric of a Grafana ``label_values(metric{...}, label)`` variable query."""
    match = re.fullmatch(r"\s*label_values\((.*),\s*\w+\s*\)\s*", query, flags=re.DOTALL)
    assert match, f"unexpected variable query {query!r}"
    return promql_metric_names(match.group(1))


# Our metrics by kind, and the series names Ray's Prometheus export gives them: the ray_ prefix;
# counters get _total; histograms are _bucket, _sum and _count series.
COUNTERS = (SHOTS_SUCCEEDED, SHOTS_FAILED, SHOTS_STARTED, TRAINING_ITERATIONS)
GAUGES = (SHOT_LOSS, SHOT_PROGRESS, SHOT_GPU_MEMORY)
HISTOGRAMS = (SHOT_SECONDS,)
RAY_BUILTINS = {"ray_tasks", "ray_node_gpus_utilization", "ray_node_gram_used", "ray_node_gram_available"}


def exported_series(name: str) -> set[str]:
    if name in COUNTERS:
        return {f"ray_{name}_total"}
    if name in HISTOGRAMS:
        return {f"ray_{name}_{suffix}" for suffix in ("bucket", "sum", "count")}
    assert name in GAUGES, f"{name}: unknown metric kind"
    return {f"ray_{name}"}


def load_dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def dashboard_panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    panels = []
    for panel in dashboard["panels"]:
        panels.append(panel)
        panels.extend(panel.get("panels", []))  # collapsed rows keep their panels inside
    return panels


# ---- the command line


def parse_cli(argv: list[str]) -> tuple[str, Any]:
    """Parse an ``archive-inpaint ...`` command line with the real CLI, strictly: an unknown
    option, a missing one or a bad value raises the parser's UsageError. (Typer builds the command
    on click, bundled or not depending on its version: only the command's own API is used.)"""
    from archive_inpaint.cli import app

    assert argv[0] == "archive-inpaint", argv
    command = typer.main.get_command(app)
    context = command.make_context("archive-inpaint", argv[1:], resilient_parsing=False)
    names = []
    rest = argv[1:]
    # Down the command groups (archive-inpaint manifest validate ...) to the command itself.
    while hasattr(command, "get_command"):
        assert rest, f"{' '.join(argv)}: no command"
        name, rest = rest[0], rest[1:]
        command = command.get_command(context, name)
        assert command is not None, f"{' '.join(argv)}: no command {name!r}"
        names.append(name)
        context = command.make_context(name, list(rest), parent=context, resilient_parsing=False)
    return " ".join(names), context


def option_value(context: Any, flag: str) -> Any:
    for parameter in context.command.params:
        if parameter.param_type_name == "option" and flag in parameter.opts:
            return context.params[parameter.name]
    raise AssertionError(f"{context.command.name} has no option {flag}")


def documented_commands(path: Path) -> list[str]:
    """``archive-inpaint ...`` command lines given as examples: in the fenced code blocks of a
    Markdown file; in a YAML file, the comment lines indented as code (``#   command``).
    Continuation lines are joined."""
    text = path.read_text()
    if path.suffix == ".md":
        blocks = re.findall(r"^```[a-z]*\n(.*?)^```", text, flags=re.M | re.S)
        lines = [line for block in blocks for line in block.splitlines()]
    else:
        lines = [match.group(1) for match in re.finditer(r"^\s*#( {2,}.*)$", text, flags=re.M)]
    commands = []
    index = 0
    while index < len(lines):
        line = lines[index].strip()
        if line.startswith("archive-inpaint "):
            command = line
            while command.endswith("\\") and index + 1 < len(lines):
                index += 1
                command = command[:-1] + " " + lines[index].strip()
            commands.append(command)
        index += 1
    return commands


# ======================================================================================== tests
# ---- Ray cluster launcher (AWS)


def test_launcher_passes_ray_validation_as_written_and_as_ray_up_prepares_it() -> None:
    config = yaml.safe_load(LAUNCHER.read_text())
    validate_config(config)
    # `ray up` merges the provider's defaults before validating again: nothing of Ray's defaults
    # (which pip install a Ray nightly and boto3 at node start) may survive into the commands.
    prepared = prepare_config(copy.deepcopy(config))
    validate_config(prepared)
    for key in ("setup_commands", "head_setup_commands", "worker_setup_commands"):
        assert not any("pip install" in command for command in prepared[key]), (key, prepared[key])
    assert prepared["file_mounts"] == {}
    assert prepared["head_node_type"] in prepared["available_node_types"]


def test_launcher_head_is_on_demand_and_schedules_nothing_and_gpu_workers_are_spot_from_zero() -> None:
    config = yaml.safe_load(LAUNCHER.read_text())
    node_types = config["available_node_types"]
    head = node_types[config["head_node_type"]]
    assert "InstanceMarketOptions" not in head["node_config"], "the head (the driver's node) must be on-demand"
    assert head["resources"].get("CPU") == 0 and head["resources"].get("GPU", 0) == 0, head["resources"]
    workers = {name: node for name, node in node_types.items() if name != config["head_node_type"]}
    gpu_workers = {name: node for name, node in workers.items() if node["resources"].get("GPU", 0) >= 1}
    assert gpu_workers, "no GPU worker type"
    for name, node in gpu_workers.items():
        node_config = node["node_config"]
        assert node_config["InstanceMarketOptions"]["MarketType"] == "spot", name
        assert node.get("min_workers", 0) == 0, f"{name} must autoscale from zero"
        assert node.get("max_workers", config["max_workers"]) >= 1, name
        assert re.match(r"(g|p)\d", node_config["InstanceType"]), f"{name}: no GPU in {node_config['InstanceType']}"
    for name, node in node_types.items():
        node_config = node["node_config"]
        profile = node_config.get("IamInstanceProfile", {})
        assert profile.get("Arn") or profile.get("Name"), f"{name} has no IAM instance profile (S3 access)"
        if "Arn" in profile:
            assert re.fullmatch(r"arn:aws:iam::\d{12}:instance-profile/[\w+=,.@/-]+", profile["Arn"]), profile
        # Ray's fallback AMI predates the CUDA versions of current torch builds.
        assert node_config.get("ImageId", "latest_dlami").lower() != "latest_dlami", name


def test_launcher_has_no_key_material() -> None:
    text = LAUNCHER.read_text()
    config = yaml.safe_load(text)
    assert not KEY_MATERIAL.search(text)
    assert "aws_credentials" not in config["provider"], "credentials come from the instance profiles"
    assert "ssh_private_key" not in config.get("auth", {}), "Ray manages the cluster's key pair"
    for value in strings(config):
        assert not re.search(r"(?i)aws_(secret_access_key|access_key_id|session_token)", value), value
        assert not URL_USERINFO.search(value), value
    assert config["file_mounts"] == {}


def test_launcher_runs_the_image_with_scratch_and_metrics_like_the_kube_manifests() -> None:
    config = yaml.safe_load(LAUNCHER.read_text())
    docker = config["docker"]
    assert docker["image"] == kube_image(RAYCLUSTER)
    scratch = scratch_path()
    volumes = [option for option in docker["run_options"] if option.startswith(("--volume", "-v"))]
    targets = {option.split("=", 1)[-1].split()[-1].split(":")[1] for option in volumes}
    assert scratch in targets, f"no volume at TMPDIR ({scratch}) in docker.run_options"
    assert any(scratch in command for command in config["initialization_commands"]), "scratch is never prepared"
    for key in ("head_start_ray_commands", "worker_start_ray_commands"):
        start = [command for command in config[key] if "ray start" in command]
        assert start and all(f"--metrics-export-port={METRICS_PORT}" in command for command in start), key


# ---- KubeRay: RayCluster and the RayJob's cluster


def kube_image(path: Path) -> str:
    images = {
        container["image"]
        for _, template in pod_templates(ray_cluster_cr(path)["spec"])
        for container in template["spec"]["containers"]
    }
    assert len(images) == 1, f"head and workers should run one image: {images}"
    return images.pop()


@pytest.mark.parametrize("path", KUBE_FILES, ids=lambda path: path.name)
def test_kuberay_translation_gives_a_valid_autoscaling_config(path: Path) -> None:
    cr = ray_cluster_cr(path)
    assert cr["spec"].get("enableInTreeAutoscaling") is True
    config = _derive_autoscaling_config_from_ray_cr(copy.deepcopy(cr))
    validate_config(config)
    node_types = config["available_node_types"]
    head = node_types.pop(config["head_node_type"])
    # Nothing lands on the head: no GPU for a shot, no CPU for any task (Ray Data's included).
    assert head["resources"].get("CPU") == 0, head["resources"]
    assert head["resources"].get("GPU", 0) == 0, head["resources"]
    assert node_types, "no worker group"
    for name, node in node_types.items():
        assert node["resources"].get("GPU", 0) >= 1, f"{name} has no GPU"
        assert node["min_workers"] == 0, f"{name} must autoscale from zero"
        assert node["max_workers"] >= 1, name
    for group in cr["spec"]["workerGroupSpecs"]:
        assert group.get("replicas", 0) == 0 and group["minReplicas"] == 0, group["groupName"]


@pytest.mark.parametrize("path", KUBE_FILES, ids=lambda path: path.name)
def test_kuberay_pods_scratch_identity_and_metrics(path: Path) -> None:
    spec = ray_cluster_cr(path)["spec"]
    account = service_account(path)
    role = account["metadata"].get("annotations", {}).get(IRSA_ANNOTATION, "")
    assert re.fullmatch(r"arn:aws:iam::\d{12}:role/[\w+=,.@/-]+", role), f"no IRSA role on the account: {role!r}"
    scratch = scratch_path()
    for group, template in pod_templates(spec):
        pod = template["spec"]
        assert pod.get("serviceAccountName") == account["metadata"]["name"], group
        container = pod["containers"][0]  # KubeRay's Ray container comes first
        ports = {port["containerPort"]: port.get("name") for port in container.get("ports", [])}
        assert ports.get(METRICS_PORT) == "metrics", f"{group}: metrics port {METRICS_PORT} not declared"
        group_spec = spec["headGroupSpec"] if group == "head" else next(
            g for g in spec["workerGroupSpecs"] if g["groupName"] == group
        )
        assert group_spec["rayStartParams"].get("metrics-export-port", str(METRICS_PORT)) == str(METRICS_PORT)
        env = {item["name"]: item for item in container.get("env", [])}
        if "TMPDIR" in env:
            assert env["TMPDIR"].get("value") == scratch, group
        if group == "head":
            assert "nvidia.com/gpu" not in container.get("resources", {}).get("limits", {})
            continue
        limits = container["resources"]["limits"]
        assert int(limits["nvidia.com/gpu"]) >= 1, group
        mounts = {mount["mountPath"]: mount["name"] for mount in container.get("volumeMounts", [])}
        assert scratch in mounts, f"{group}: nothing mounted at TMPDIR ({scratch})"
        volume = next(v for v in pod.get("volumes", []) if v["name"] == mounts[scratch])
        assert "emptyDir" in volume or "ephemeral" in volume, f"{group}: scratch must be pod-local: {volume}"


@pytest.mark.parametrize("path", KUBE_FILES, ids=lambda path: path.name)
def test_kube_manifests_take_credentials_only_from_secret_references(path: Path) -> None:
    text = path.read_text()
    assert not KEY_MATERIAL.search(text)
    documents = load_yaml_documents(path)
    assert not [d for d in documents if d.get("kind") == "Secret"], "a Secret's data does not belong here"
    checked = 0
    for holder in containers_with_env(documents):
        for item in holder["env"]:
            name = item["name"]
            if CREDENTIAL_NAME.search(name):
                assert "value" not in item, f"literal value for {name}"
                assert "secretKeyRef" in item.get("valueFrom", {}), f"{name} must come from a secretKeyRef"
                checked += 1
            if "valueFrom" in item:
                assert set(item["valueFrom"]) <= {"secretKeyRef", "configMapKeyRef", "fieldRef", "resourceFieldRef"}
            if "value" in item:
                assert not URL_USERINFO.search(str(item["value"])), name
    # The documented alternative to IRSA is there, and only as secret references.
    assert checked >= 2, "expected AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY from a Secret as IRSA's alternative"


def test_rayjob_runs_the_cli_on_its_own_cluster() -> None:
    job = only(load_yaml_documents(RAYJOB), "RayJob")
    spec = job["spec"]
    assert spec["shutdownAfterJobFinishes"] is True
    # No runtime environment: the package is in the image and its variables would be visible in
    # the dashboard. No entrypoint resources: the driver is then pinned to the (on-demand) head.
    assert "runtimeEnvYAML" not in spec
    for key in ("entrypointNumCpus", "entrypointNumGpus", "entrypointResources"):
        assert not spec.get(key), f"{key} would move the driver off the head"
    argv = shlex.split(spec["entrypoint"])
    assert argv[:2] == ["archive-inpaint", "submit"]
    assert spec["entrypoint"] in GUIDE.read_text(), "cluster/README.md quotes the RayJob's entrypoint verbatim"
    _, context = parse_cli(argv)
    assert context.params["manifest"].startswith("s3://")
    assert option_value(context, "--output").startswith("s3://")
    assert option_value(context, "--device") == "cuda"
    assert option_value(context, "--max-retries") >= 5, "spot fleets want several retries per shot"
    assert option_value(context, "--gpu-memory") is not None
    assert option_value(context, "--quiet") is True
    assert option_value(context, "--address") is None, "inside the cluster the driver attaches via RAY_ADDRESS"
    submitter = spec.get("submitterPodTemplate", {}).get("spec", {}).get("containers", [])
    for container in submitter:
        version, _ = ray_image_version(container["image"])
        assert str(version) == spec["rayClusterSpec"]["rayVersion"]


def test_rayjob_cluster_is_the_raycluster() -> None:
    """The RayJob carries its own copy of the cluster spec: the copies must not drift apart."""
    standalone = ray_cluster_cr(RAYCLUSTER)["spec"]
    in_job = ray_cluster_cr(RAYJOB)["spec"]
    assert in_job == standalone
    assert service_account(RAYJOB) == service_account(RAYCLUSTER)


def test_documented_commands_parse_with_the_cli() -> None:
    sources = [GUIDE, RAYCLUSTER, RAYJOB, LAUNCHER]
    commands = [(source.name, command) for source in sources for command in documented_commands(source)]
    assert len(commands) >= 3
    for source, command in commands:
        try:
            parse_cli(shlex.split(command))
        except Exception as error:  # noqa: BLE001  the parser's UsageError, whichever click it is
            message = error.format_message() if hasattr(error, "format_message") else str(error)
            raise AssertionError(f"{source}: {command!r}: {message}") from error


# ---- the image


def test_dockerfile_base_is_a_ray_gpu_image_that_satisfies_the_package_pins() -> None:
    image = read_dockerfile()
    assert re.search(r"-(gpu|cu\d+)$", image.base), f"{image.base} is not one of Ray's GPU images"
    version, python = ray_image_version(image.base)
    ray_pin = package_pin("ray")
    assert {"default", "data"} <= ray_pin.extras
    assert version in ray_pin.specifier, f"the image's Ray {version} is outside the package's pin {ray_pin}"
    requires_python = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert Version(python) in SpecifierSet(requires_python)
    for path in KUBE_FILES:
        assert ray_cluster_cr(path)["spec"]["rayVersion"] == str(version), path.name


def test_dockerfile_installs_cuda_torch_then_the_package_from_the_build_context() -> None:
    image = read_dockerfile()
    runs = image.runs()
    installs = [args for run in runs for args in pip_installs(run)]
    torch_installs = [args for args in installs if any(arg.startswith("torch==") for arg in args)]
    assert torch_installs, "torch is not installed with a pinned version"
    index = torch_installs[0][torch_installs[0].index("--index-url") + 1]
    assert re.fullmatch(r"https://download\.pytorch\.org/whl/cu\d+", index), index
    torch_pin = next(a for a in torch_installs[0] if a.startswith("torch=="))
    assert Version(torch_pin.split("==")[1]) in package_pin("torch").specifier

    # Where each file or folder of the context lands (Docker's rules: a folder's contents are
    # copied into the destination; a file into a destination ending in / keeps its name).
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    needed = {"pyproject.toml", pyproject["readme"], "archive_inpaint"}
    landed: dict[str, tuple[int, PurePosixPath]] = {}
    for index, sources, destination in image.copies():
        for source in sources:
            name = source.rstrip("/")
            assert (ROOT / name).exists(), f"COPY {source}: not in the build context (the repository root)"
            target = PurePosixPath(destination)
            if (ROOT / name).is_file() and destination.endswith("/"):
                target = target / PurePosixPath(name).name
            landed[name] = (index, target)
    assert needed <= set(landed), f"not copied: {needed - set(landed)}"
    project_dir = landed["pyproject.toml"][1].parent
    assert landed[pyproject["readme"]][1] == project_dir / pyproject["readme"]
    assert landed["archive_inpaint"][1] == project_dir / "archive_inpaint"
    installs = [
        (index, args)
        for index, instruction in enumerate(image.instructions)
        if instruction.keyword == "RUN"
        for args in pip_installs(_expand(instruction.args, {**image.args, **image.env}))
        if str(project_dir) in [arg.rstrip("/") for arg in args]
    ]
    assert installs, f"the package ({project_dir}) is never pip installed"
    index, args = installs[-1]
    assert "-e" not in args and "--editable" not in args, "the image must not depend on a source checkout"
    assert index > max(position for position, _ in landed.values()), "installed before all its sources are in"


def test_dockerfile_runs_as_non_root_without_credentials() -> None:
    text = DOCKERFILE.read_text()
    image = read_dockerfile()
    assert image.user not in (None, "root", "0"), "the image must end as a non-root user"
    assert not KEY_MATERIAL.search(text)
    assert not URL_USERINFO.search(text)
    for instruction in parse_dockerfile(text):
        if instruction.keyword in ("ARG", "ENV"):
            for name, _ in _assignments(instruction.args):
                where = f"Dockerfile line {instruction.line}"
                assert not CREDENTIAL_NAME.search(name), f"{where}: {name} looks like a credential"
                assert not name.startswith("AWS_"), f"{where}: AWS configuration belongs to the nodes"
        if instruction.keyword in ("COPY", "ADD"):
            assert not re.search(r"\.aws|\.env\b|credentials|\.pem|id_rsa", instruction.args), instruction


def test_dockerignore_keeps_the_package_and_drops_the_rest() -> None:
    patterns = []
    for line in DOCKERIGNORE.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            negated = line.startswith("!")
            pattern = line.lstrip("!").strip("/")
            regex = re.escape(pattern).replace(r"\*\*/", "(?:.*/)?").replace(r"\*\*", ".*")
            regex = regex.replace(r"\*", "[^/]*").replace(r"\?", "[^/]")
            patterns.append((re.compile(regex), negated))

    def excluded(path: str) -> bool:
        # Docker's rule: a pattern matches a path or any of its parent folders; the last match wins.
        parts = path.split("/")
        prefixes = ["/".join(parts[: end + 1]) for end in range(len(parts))]
        result = False
        for regex, negated in patterns:
            if any(regex.fullmatch(prefix) for prefix in prefixes):
                result = not negated
        return result

    image = read_dockerfile()
    for _, sources, _ in image.copies():
        for source in sources:
            path = ROOT / source
            files = [path] if path.is_file() else [f for f in path.rglob("*.py") if "__pycache__" not in f.parts]
            assert files, source
            for file in files:
                relative = file.relative_to(ROOT).as_posix()
                assert not excluded(relative), f"{relative} is copied, yet excluded from the context"
    dropped_files = (
        ".venv/bin/python",
        ".git/HEAD",
        "examples/carphone.mp4",
        "tests/conftest.py",
        "archive_inpaint/__pycache__/cli.cpython-312.pyc",
    )
    for dropped in dropped_files:
        assert excluded(dropped), dropped


# ---- the Grafana dashboard


def test_promql_metric_name_extraction() -> None:
    """The extraction the dashboard checks rely on: functions, labels, durations, grouping and
    numbers are not metric names."""
    names = promql_metric_names
    assert names('sum by (le) (rate(a_bucket{x=~"$v", y="b c"}[$__rate_interval]))') == {"a_bucket"}
    assert names('histogram_quantile(0.9, sum by (le) (max_over_time(h{q="1"}[1h]))) or vector(0)') == {"h"}
    assert promql_metric_names("(sum by (i, g) (u{a=\"1\"}) + sum by (i) (v)) * 1024 * 1e3") == {"u", "v"}
    assert promql_metric_names("sum(x) / on() count(y) > bool 0") == {"x", "y"}


def test_dashboard_panels_query_known_metrics_through_the_datasource_variable() -> None:
    dashboard = load_dashboard()
    assert dashboard["uid"] == "archive-inpaint" and dashboard["title"] == "archive-inpaint"
    assert dashboard["schemaVersion"] >= 36
    variables = {variable["name"]: variable for variable in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"

    ours = set().union(*(exported_series(name) for name in COUNTERS + GAUGES + HISTOGRAMS))
    used: set[str] = set()
    panels = [panel for panel in dashboard_panels(dashboard) if panel["type"] != "row"]
    assert len(panels) >= 10
    for panel in panels:
        expressions = [target.get("expr", "") for target in panel.get("targets", [])]
        assert expressions and all(expr.strip() for expr in expressions), f"{panel['title']!r} has no query"
        for expr in expressions:
            names = promql_metric_names(expr)
            assert names, f"{panel['title']!r}: {expr!r} selects no metric"
            unknown = names - ours - RAY_BUILTINS
            assert not unknown, f"{panel['title']!r}: unknown metrics {unknown} in {expr!r}"
            used |= names
    for variable in variables.values():
        if variable["type"] == "query":
            query = variable["query"]["query"] if isinstance(variable["query"], dict) else variable["query"]
            unknown = label_values_metric(query) - ours - RAY_BUILTINS
            assert not unknown, f"variable {variable['name']}: unknown metrics {unknown}"

    for name in COUNTERS + GAUGES + HISTOGRAMS:
        assert name.startswith(PREFIX)
        assert exported_series(name) & used, f"no panel shows {name} ({sorted(exported_series(name))})"
    assert {"ray_tasks", "ray_node_gpus_utilization", "ray_node_gram_used"} <= used
    shots = [p for p in panels for t in p["targets"] if "ray_tasks" in t["expr"]]
    assert all('Name=~"shot:.*"' in t["expr"] for p in shots for t in p["targets"] if "ray_tasks" in t["expr"])
    assert any('State="RUNNING"' in t["expr"] for p in shots for t in p["targets"])
    assert any("PENDING_" in t["expr"] for p in shots for t in p["targets"])


def test_dashboard_metric_kinds_match_what_the_workers_create(monkeypatch: pytest.MonkeyPatch) -> None:
    """The kinds above (which decide the exported names) are those ShotMetrics really creates, and
    the dashboard covers every metric it creates."""
    import ray.util.metrics

    from archive_inpaint.batch import metrics

    created: dict[str, str] = {}

    def recorder(kind: str) -> type:
        class Recorder:
            def __init__(self, name: str, *args: Any, **kwargs: Any) -> None:
                created[name] = kind

        return Recorder

    for kind in ("Counter", "Gauge", "Histogram"):
        monkeypatch.setattr(ray.util.metrics, kind, recorder(kind))
    metrics.ShotMetrics()
    expected = {name: "Counter" for name in COUNTERS} | {name: "Gauge" for name in GAUGES}
    expected |= {name: "Histogram" for name in HISTOGRAMS}
    assert created == expected


def test_dashboard_datasources_are_the_template_variable_and_panels_do_not_overlap() -> None:
    dashboard = load_dashboard()

    def references(document: Any, path: str) -> Iterator[tuple[str, Any]]:
        if isinstance(document, dict):
            for key, value in document.items():
                if key == "datasource":
                    yield path, value
                yield from references(value, f"{path}.{key}")
        elif isinstance(document, list):
            for index, value in enumerate(document):
                yield from references(value, f"{path}[{index}]")

    found = list(references(dashboard, "dashboard"))
    assert found
    for path, value in found:
        uid = value.get("uid") if isinstance(value, dict) else value
        assert uid == "${datasource}", f"{path}: {value!r}"
        if isinstance(value, dict):
            assert value.get("type") == "prometheus", path

    cells: dict[tuple[int, int], str] = {}
    for panel in dashboard_panels(dashboard):
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24, panel["title"]
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in cells, f"{panel['title']!r} overlaps {cells[(x, y)]!r}"
                cells[(x, y)] = panel["title"]
    assert len({panel["id"] for panel in dashboard_panels(dashboard)}) == len(dashboard_panels(dashboard))
