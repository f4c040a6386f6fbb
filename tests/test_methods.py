"""The three methods behind one interface: selection, presets, the shared training loop (resume,
time budget) and the shared fill path (only hole pixels change), for each method."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from archive_inpaint.config import (
    METHODS,
    DIPVidFlowConfig,
    IIVIConfig,
    LGTSMConfig,
    MethodConfig,
    MaskPropagationConfig,
    ProgressiveConfig,
    TrainConfig,
    preset,
)
from archive_inpaint.methods import make_method
from archive_inpaint.models.dip_net import DIPNetConfig
from archive_inpaint.models.lgtsm_net import LGTSMNetConfig
from archive_inpaint.models.mask_net import MaskNetConfig
from archive_inpaint.pipeline import inpaint_arrays
from archive_inpaint.training.trainer import run_fingerprint, train
from archive_inpaint.training.working_set import build_working_set
from engine_fixtures import (  # noqa: F401  (single_thread is a fixture)
    CPU,
    moving_box_holes,
    moving_texture,
    single_thread,
    state_dicts_equal,
    tiny_config,
)

pytestmark = pytest.mark.usefixtures("single_thread")


def tiny_method_config(method: str, iterations: int, checkpoint_every: int = 1000) -> MethodConfig:
    """Each method at CPU-seconds scale, through the same shared settings."""
    train_cfg = TrainConfig(
        iterations=iterations, batch_size=2, learning_rate=1e-3, checkpoint_every=checkpoint_every
    )
    shared = dict(
        train=train_cfg,
        progressive=ProgressiveConfig(max_stages=1),
        mask_propagation=MaskPropagationConfig(model=MaskNetConfig(width=4, depth=2), iterations=20),
    )
    if method == "iivi":
        return dataclasses.replace(tiny_config(iterations, checkpoint_every=checkpoint_every), train=train_cfg)
    if method == "dip-vid-flow":
        return DIPVidFlowConfig(model=DIPNetConfig(width=4, depth=3), updates_per_batch=2, **shared)
    return LGTSMConfig(model=LGTSMNetConfig(width=4), clip_length=3, clip_overlap=1, **shared)


@pytest.fixture(scope="module")
def shot():
    frames = moving_texture(7, 24, 32, seed=4)
    holes = moving_box_holes(7, 24, 32, box=(5, 7), empty=(3,))
    return frames, holes


def test_each_config_selects_its_method():
    for method in METHODS:
        for name in ("fast", "standard", "quality"):
            config = preset(name, method)
            assert config.method == method
            assert make_method(config).name == method
    with pytest.raises(ValueError, match="unknown method 'deepfill'"):
        preset("fast", "deepfill")
    with pytest.raises(TypeError):
        make_method(MethodConfig())


def test_overrides_of_another_method_are_an_error():
    assert preset("fast", "lgtsm").with_overrides(width=8).model.width == 8
    assert preset("fast", "dip-vid-flow").with_overrides(iterations=7).train.iterations == 7
    with pytest.raises(ValueError, match="IIVI settings, not lgtsm's"):
        preset("fast", "lgtsm").with_overrides(contextual_weight=0.1)
    # Patch stages refine IIVI's network only.
    with pytest.raises(ValueError, match="max_stages must be 1"):
        preset("fast", "dip-vid-flow").with_overrides(max_stages=2)


def test_checkpoints_of_one_method_are_never_resumed_by_another(shot):
    frames, holes = shot
    working_set = build_working_set(frames, holes, 320, CPU)
    prints = {run_fingerprint(working_set, tiny_method_config(m, 4)) for m in METHODS}
    assert len(prints) == len(METHODS)
    # The iteration ceiling and the time budget are not learnt: a run can be extended.
    config = tiny_method_config("lgtsm", 4)
    longer = dataclasses.replace(config, train=dataclasses.replace(config.train, iterations=9, time_budget_seconds=5.0))
    assert run_fingerprint(working_set, config) == run_fingerprint(working_set, longer)


@pytest.mark.parametrize("method", METHODS)
def test_each_method_fills_only_the_holes(shot, method):
    frames, holes = shot
    result = inpaint_arrays(frames, holes, tiny_method_config(method, 3), CPU)
    assert result.frames.shape == frames.shape and result.frames.dtype == frames.dtype
    assert np.array_equal(result.frames[~holes], frames[~holes])
    assert not np.array_equal(result.frames[holes], frames[holes])  # a fill, not a copy of the input
    assert result.method == method and result.iterations == 3


@pytest.mark.parametrize("method", METHODS)
def test_each_method_resumes_exactly(shot, method, tmp_path: Path):
    """A step's batch follows from the iteration and the checkpointed generator alone, so a run
    stopped and resumed ends with the very weights of an uninterrupted one."""
    frames, holes = shot
    working_set = build_working_set(frames, holes, 320, CPU)
    folder = tmp_path / "ckpt"
    first = train(working_set, tiny_method_config(method, 3, checkpoint_every=3), CPU, checkpoint_dir=folder)
    resumed = train(working_set, tiny_method_config(method, 5), CPU, checkpoint_dir=folder)
    straight = train(working_set, tiny_method_config(method, 5), CPU)
    assert resumed.resumed_from == 3 and resumed.iterations == 5
    assert resumed.loss_history[:3] == first.loss_history
    assert resumed.loss_history == straight.loss_history
    assert state_dicts_equal(resumed.network.state_dict(), straight.network.state_dict())


def test_time_budget_stops_training_early_and_checkpoints_there(shot, tmp_path: Path):
    frames, holes = shot
    working_set = build_working_set(frames, holes, 320, CPU)
    config = tiny_method_config("iivi", 10_000)
    budgeted = dataclasses.replace(config, train=dataclasses.replace(config.train, time_budget_seconds=0.5))
    folder = tmp_path / "ckpt"
    result = train(working_set, budgeted, CPU, checkpoint_dir=folder)
    assert 1 <= result.iterations < 10_000
    assert len(result.loss_history) == result.iterations
    saved = sorted(p.name for p in folder.glob("ckpt_*.pt"))
    assert saved[-1].endswith(f"_{result.iterations:08d}.pt")
    # The same run with more time continues from where the budget stopped it.
    more = dataclasses.replace(config, train=dataclasses.replace(config.train, iterations=result.iterations + 2))
    resumed = train(working_set, more, CPU, checkpoint_dir=folder)
    assert resumed.resumed_from == result.iterations and resumed.iterations == result.iterations + 2


def test_the_batch_runner_takes_each_rows_method(tmp_path: Path):
    from archive_inpaint.batch.manifest import ShotSpec
    from archive_inpaint.batch.runner import RunOptions, make_job
    from archive_inpaint.batch.shot_task import fingerprint

    video, mask = tmp_path / "v.mkv", tmp_path / "m.png"
    video.write_bytes(b"x")
    mask.write_bytes(b"y")
    options = RunOptions("unused", str(tmp_path / "out"), method="dip-vid-flow", device="cpu")
    default = make_job(ShotSpec("a", str(video), str(mask)), options)
    own = make_job(ShotSpec("b", str(video), str(mask), method="lgtsm"), options)
    assert isinstance(default.config, DIPVidFlowConfig)
    assert isinstance(own.config, LGTSMConfig)
    # The method is part of what a done shot's marker says it was made with.
    _, document = fingerprint(own)
    assert document["parameters"]["method"] == "lgtsm"
    assert json.loads(json.dumps(document))["parameters"]["config"]["clip_length"] == own.config.clip_length
    iivi = make_job(ShotSpec("c", str(video), str(mask), method="iivi"), options)
    assert isinstance(iivi.config, IIVIConfig)


def test_run_wide_method_settings_reach_only_the_rows_whose_method_has_them(tmp_path: Path):
    from archive_inpaint.batch.manifest import ShotSpec
    from archive_inpaint.batch.runner import RunOptions, make_job

    video, mask = tmp_path / "v.mkv", tmp_path / "m.png"
    options = RunOptions(
        "unused", str(tmp_path / "out"), device="cpu",
        vgg_weights="/models/vgg.pth", gan_weight=0.5, flow_estimator="farneback",
    )
    jobs = {m: make_job(ShotSpec(m, str(video), str(mask), method=m), options).config for m in METHODS}
    assert jobs["lgtsm"].gan_weight == 0.5 and jobs["lgtsm"].vgg_weights == "/models/vgg.pth"
    assert jobs["dip-vid-flow"].flow.estimator == "farneback" and jobs["dip-vid-flow"].vgg_weights == "/models/vgg.pth"
    assert jobs["iivi"].regularizers.vgg19_weights == "/models/vgg.pth"
    # The settings are part of what a shot is made with, so they change its fingerprint.
    assert jobs["lgtsm"] != make_job(ShotSpec("x", str(video), str(mask), method="lgtsm"), RunOptions("u", "o")).config
    # On a single run, another method's setting is an error, not silently dropped.
    with pytest.raises(ValueError, match="an lgtsm setting, not iivi's"):
        preset("fast", "iivi").with_overrides(gan_weight=1.0)
    with pytest.raises(ValueError, match="a dip-vid-flow setting, not lgtsm's"):
        preset("fast", "lgtsm").with_overrides(flow_estimator="dis")
