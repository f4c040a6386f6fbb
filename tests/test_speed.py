"""Time-to-quality features of training: held-out pixels and early stopping, warm start from
another shot's weights, batch/learning-rate scaling, and the speed switches (bf16 autocast,
channels-last, fused Adam, torch.compile), each checked for what it must and must not change."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from engine_fixtures import moving_texture

from archive_inpaint.config import HoldoutConfig, MethodConfig, preset
from archive_inpaint.media import read_frames
from archive_inpaint.training.acceleration import training_dtype
from archive_inpaint.training.checkpoint import list_checkpoints
from archive_inpaint.training.holdout import EarlyStopping, hide, make_holdout
from archive_inpaint.training.trainer import make_network, train
from archive_inpaint.training.working_set import WorkingSet, build_working_set

CPU = torch.device("cpu")
EXAMPLE_CLIP = Path(__file__).resolve().parents[1] / "examples" / "carphone.mp4"


def shot(seed: int = 0, frames: int = 8) -> WorkingSet:
    pixels = moving_texture(frames, 32, 48, seed=seed)
    holes = np.zeros((frames, 32, 48), bool)
    for t in range(frames):
        holes[t, 10:20, 8 + 2 * t : 18 + 2 * t] = True
    return build_working_set(pixels, holes, 320, CPU)


def reel_part(start: int, hole_x: int) -> WorkingSet:
    """Eight frames from ``start`` of the example clip (real footage: one look across its parts),
    with a box hole drifting right from ``hole_x``."""
    clip = read_frames(EXAMPLE_CLIP, start=start, end=start + 8).frames
    frames = np.stack([cv2.resize(frame, (64, 48), interpolation=cv2.INTER_AREA) for frame in clip])
    holes = np.zeros((8, 48, 64), bool)
    for t in range(8):
        holes[t, 14:28, hole_x + 2 * t : hole_x + 14 + 2 * t] = True
    return build_working_set(frames, holes, 320, CPU)


def config(iterations: int = 40, **train_changes: object) -> MethodConfig:
    base = preset("fast").with_overrides(iterations=iterations, width=4, checkpoint_every=1000)
    return dataclasses.replace(base, train=dataclasses.replace(base.train, **train_changes))


def with_holdout(frames: int = 2, **holdout: object) -> HoldoutConfig:
    return HoldoutConfig(frames=frames, **holdout)


def test_held_out_pixels_are_known_pixels_hidden_from_training_like_holes() -> None:
    working_set = shot()
    holdout = make_holdout(working_set, with_holdout(3), seed=0)
    assert holdout is not None and holdout.count > 0
    assert holdout.frame_ids == [0, 4, 7]  # spread over the shot
    # Known pixels only, and the same ones for the same seed (a resumed run holds out the same).
    assert not (holdout.pixels & working_set.holes[holdout.frame_ids]).any()
    again = make_holdout(working_set, with_holdout(3), seed=0)
    assert again is not None and torch.equal(again.pixels, holdout.pixels)
    other = make_holdout(working_set, with_holdout(3), seed=1)
    assert other is not None and not torch.equal(other.pixels, holdout.pixels)
    hidden = hide(working_set, holdout)
    assert hidden.holes[holdout.frame_ids][holdout.pixels].all()
    assert not working_set.holes[holdout.frame_ids][holdout.pixels].any()  # the original is untouched
    assert make_holdout(working_set, HoldoutConfig(frames=0), seed=0) is None


def test_training_never_sees_the_held_out_pixels() -> None:
    """Changing the held-out pixels' values changes nothing in training (not input, not loss)."""
    working_set = shot()
    cfg = config(iterations=5, holdout=with_holdout(3, eval_every=1000, stop_patience=None))
    holdout = make_holdout(working_set, cfg.train.holdout, cfg.train.seed)
    assert holdout is not None
    tampered = dataclasses.replace(working_set, images=working_set.images.clone())
    for index, frame in enumerate(holdout.frame_ids):
        mask = holdout.pixels[index].expand(3, -1, -1)
        tampered.images[frame][mask] = -tampered.images[frame][mask]
    losses = train(working_set, cfg, CPU).loss_history
    assert train(tampered, cfg, CPU).loss_history == losses
    # Control: without the holdout those pixels are trained on, and the same change shows.
    plain = config(iterations=5)
    assert train(tampered, plain, CPU).loss_history != train(working_set, plain, CPU).loss_history


def test_early_stopping_rule() -> None:
    rule = EarlyStopping(HoldoutConfig(frames=1, stop_patience=2, min_delta_db=0.1, min_iterations=0))
    decisions = [rule.should_stop(i, psnr) for i, psnr in enumerate([20.0, 21.0, 21.05, 21.08, 25.0, 25.0, 25.05])]
    assert decisions == [False, False, False, True, False, False, True]
    late = EarlyStopping(HoldoutConfig(frames=1, stop_patience=1, min_iterations=100))
    assert [late.should_stop(i, 10.0) for i in (50, 60, 100)] == [False, False, True]
    never = EarlyStopping(HoldoutConfig(frames=1, stop_patience=None))
    assert not any(never.should_stop(i, 10.0) for i in range(20))


def test_training_stops_when_held_out_pixels_stop_improving(tmp_path: Path) -> None:
    working_set = shot()
    # An improvement of 50 dB is never seen: the run stops after `patience` evaluations.
    stopping = with_holdout(2, eval_every=5, stop_patience=2, min_delta_db=50.0)
    result = train(working_set, config(iterations=400, holdout=stopping), CPU, checkpoint_dir=tmp_path)
    assert result.stopped_early
    assert result.iterations == 15 < 400  # evaluations at 5 (best), 10, 15 (second without gain)
    assert [e.iteration for e in result.evaluations] == [5, 10, 15]
    assert len(result.loss_history) == 15
    # The run ends with a checkpoint at the step it stopped, like any finished run.
    assert list_checkpoints(tmp_path, result.fingerprint)[-1].name.endswith("00000015.pt")
    assert result.provenance["holdout"]["stopped_early"] is True
    # Evaluate-only: the ceiling is reached, and the held-out PSNR rises as the network learns.
    watched = with_holdout(2, eval_every=20, stop_patience=None)
    full = train(working_set, config(iterations=200, holdout=watched, learning_rate=2e-3), CPU)
    assert not full.stopped_early and full.iterations == 200
    psnrs = [e.psnr for e in full.evaluations]
    assert len(psnrs) == 10 and psnrs[-1] > psnrs[0] + 1.0
    times = [e.train_seconds for e in full.evaluations]
    assert times == sorted(times) and full.evaluations[-1].eval_seconds > 0


def test_a_resumed_run_stops_where_an_uninterrupted_one_does_and_a_stopped_one_stays_stopped(tmp_path: Path) -> None:
    working_set = shot()
    stopping = with_holdout(2, eval_every=5, stop_patience=2, min_delta_db=50.0)
    whole = train(working_set, config(iterations=400, holdout=stopping), CPU, checkpoint_dir=tmp_path / "whole")
    assert whole.stopped_early and whole.iterations == 15
    # Interrupted after the first evaluation (the ceiling ends that run; checkpoint at 10), then
    # resumed with the real ceiling: the evaluation made before the interruption still counts, so
    # it stops at 15 too (forgetting it would restart the patience and stop at 20).
    interrupted = tmp_path / "interrupted"
    first = train(working_set, config(iterations=10, holdout=stopping), CPU, checkpoint_dir=interrupted)
    assert not first.stopped_early and first.iterations == 10
    resumed = train(working_set, config(iterations=400, holdout=stopping), CPU, checkpoint_dir=interrupted)
    assert resumed.resumed_from == 10 and resumed.stopped_early and resumed.iterations == 15
    assert [e.iteration for e in resumed.evaluations] == [5, 10, 15]
    assert [e.psnr for e in resumed.evaluations] == pytest.approx([e.psnr for e in whole.evaluations])
    times = [e.train_seconds for e in resumed.evaluations]
    assert times == sorted(times)
    # A rerun of the stopped run does not train on: no new step, the same weights.
    again = train(working_set, config(iterations=400, holdout=stopping), CPU, checkpoint_dir=tmp_path / "whole")
    assert again.resumed_from == 15 and again.iterations == 15 and again.stopped_early
    assert len(again.loss_history) == 15
    for name, tensor in whole.network.state_dict().items():
        assert torch.equal(tensor, again.network.state_dict()[name])
    # Without early stopping in the configuration, the same checkpoint trains on to the ceiling.
    watched = with_holdout(2, eval_every=5, stop_patience=None)
    extended = train(working_set, config(iterations=25, holdout=watched), CPU, checkpoint_dir=tmp_path / "whole")
    assert extended.resumed_from == 15 and extended.iterations == 25 and not extended.stopped_early


def test_warm_start_begins_where_the_other_shot_ended(caplog: pytest.LogCaptureFixture, tmp_path: Path) -> None:
    first = train(reel_part(0, hole_x=6), config(iterations=150, learning_rate=2e-3), CPU)
    weights = tmp_path / "weights.pt"
    torch.save(first.network.state_dict(), weights)
    second = reel_part(40, hole_x=30)  # later in the same reel, another hole
    cold = train(second, config(iterations=3), CPU)
    warm = train(second, config(iterations=3), CPU, initial_weights=weights)
    assert warm.warm_start == str(weights) and warm.provenance["warm_start"] == str(weights)
    assert cold.warm_start is None
    # A network that learnt the reel's look starts far below a fresh one on a new part of it
    # (measured: 0.30 against 0.97).
    assert warm.loss_history[0] < 0.5 * cold.loss_history[0]
    # Weights of another width do not fit: logged, and training starts from scratch.
    with caplog.at_level(logging.WARNING):
        other = train(second, config(iterations=3).with_overrides(width=8), CPU, initial_weights=weights)
    assert other.warm_start is None and "warm start" in caplog.text
    # A run that resumes from its own checkpoint ignores the warm start (it is further along).
    checkpoints = tmp_path / "ckpt"
    train(second, config(iterations=4), CPU, checkpoint_dir=checkpoints)
    resumed = train(second, config(iterations=6), CPU, checkpoint_dir=checkpoints, initial_weights=weights)
    assert resumed.resumed_from == 4 and resumed.warm_start is None


def test_batch_scaling_keeps_the_frames_seen_and_scales_the_rate_by_the_root() -> None:
    base = config(iterations=1000, holdout=with_holdout(2, eval_every=100, min_iterations=200)).train
    scaled = base.scaled(4)
    assert (scaled.batch_size, scaled.iterations) == (4 * base.batch_size, 250)
    assert scaled.learning_rate == pytest.approx(2 * base.learning_rate)
    assert scaled.holdout.eval_every == 25 and scaled.holdout.min_iterations == 50
    assert scaled.batch_size * scaled.iterations == base.batch_size * base.iterations
    with pytest.raises(ValueError):
        base.scaled(0)


def test_speed_switches_leave_the_learning_alone() -> None:
    working_set = shot()
    reference = train(working_set, config(iterations=20, fused_optimizer=False, channels_last=False), CPU)
    fused = train(working_set, config(iterations=20), CPU)  # the default: fused Adam, channels-last
    assert fused.loss_history == pytest.approx(reference.loss_history, rel=1e-4)
    network = make_network(config(), CPU)
    optimizer_groups = fused.method.build_optimizer(network).param_groups  # type: ignore[union-attr]
    assert optimizer_groups[0]["fused"] is True
    conv = next(m for m in network.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    plain = make_network(config(channels_last=False), CPU)
    assert next(m for m in plain.modules() if isinstance(m, torch.nn.Conv2d)).weight.is_contiguous()
    # bf16: the same schedule in lower precision; it learns as fp32 does, to bf16's precision.
    bf16 = train(working_set, config(iterations=20, precision="bf16"), CPU)
    assert bf16.loss_history[-1] < bf16.loss_history[0]
    assert bf16.loss_history == pytest.approx(reference.loss_history, rel=0.05)
    assert bf16.loss_history != pytest.approx(reference.loss_history, rel=1e-6)  # it did run in bf16
    # auto: bf16 where the device has bf16 arithmetic (CUDA GPUs that do; CPUs with AMX/AVX512-BF16).
    cpuinfo = Path("/proc/cpuinfo")
    native = cpuinfo.is_file() and bool({"amx_bf16", "avx512_bf16"} & set(cpuinfo.read_text().split()))
    assert training_dtype(config(precision="auto").train, CPU) is (torch.bfloat16 if native else None)
    assert training_dtype(config(precision="bf16").train, CPU) is torch.bfloat16
    with pytest.raises(ValueError, match="precision"):
        config(precision="fp8")


def test_compiled_network_learns_the_same_and_checkpoints_plain_names(tmp_path: Path) -> None:
    working_set = shot(frames=6)
    eager = train(working_set, config(iterations=6), CPU)
    compiled = train(working_set, config(iterations=6, compile=True), CPU, checkpoint_dir=tmp_path)
    assert compiled.loss_history == pytest.approx(eager.loss_history, rel=1e-3)
    names = set(torch.load(list_checkpoints(tmp_path, compiled.fingerprint)[-1], weights_only=True)["model"])
    assert names == set(eager.network.state_dict())  # no "_orig_mod." prefix: eager runs resume them


def test_command_line_early_stop_save_and_warm_start(tmp_path: Path) -> None:
    from fractions import Fraction

    from typer.testing import CliRunner

    from archive_inpaint.cli import app
    from archive_inpaint.media import write_frames

    clip = read_frames(EXAMPLE_CLIP, end=16).frames
    frames = np.stack([cv2.resize(frame, (64, 48), interpolation=cv2.INTER_AREA) for frame in clip])
    holes = np.zeros((16, 48, 64, 3), np.uint8)
    holes[:, 14:28, 20:34] = 255
    video = write_frames(frames[:8], Fraction(25), tmp_path / "a.mkv")
    later = write_frames(frames[8:], Fraction(25), tmp_path / "b.mkv")
    mask = write_frames(holes[:8], Fraction(25), tmp_path / "mask.mkv")
    weights = tmp_path / "reel.pt"
    common = ["--width", "4", "--quiet", "--device", "cpu", "--mask", str(mask)]
    runner = CliRunner()
    first = runner.invoke(
        app,
        ["inpaint", str(video), "-o", str(tmp_path / "a_out.mkv"), *common, "--iterations", "120",
         "--early-stop", "2", "--save-weights", str(weights)],
        env={"COLUMNS": "1000"},
    )
    assert first.exit_code == 0, first.output
    # Held out on 2 frames, scored at step 100 and at the end (stopping itself: tested above).
    import json

    holdout = json.loads((tmp_path / "a_out.provenance.json").read_text())["method_details"]["holdout"]
    assert holdout["frames"] == [0, 7] and holdout["pixels"] > 0 and holdout["final_psnr"] > 0
    assert weights.is_file()
    second = runner.invoke(
        app,
        ["inpaint", str(later), "-o", str(tmp_path / "b_out.mkv"), *common, "--iterations", "3",
         "--warm-start", str(weights)],
        env={"COLUMNS": "1000"},
    )
    assert second.exit_code == 0, second.output
    assert str(weights) in (tmp_path / "b_out.provenance.json").read_text()
    missing = runner.invoke(app, ["inpaint", str(later), "-o", str(tmp_path / "c.mkv"), *common, "--warm-start", str(tmp_path / "nope.pt")])
    assert missing.exit_code == 2 and "weights file not found" in " ".join(missing.output.split())


def test_early_stopping_waits_for_the_regularizers_phase() -> None:
    from archive_inpaint.training.trainer import _stopping_rule

    stopping = HoldoutConfig(frames=2, eval_every=10, stop_patience=3)
    plain = config(iterations=1000, holdout=stopping)
    assert _stopping_rule(plain).min_iterations == 0
    regularized = plain.with_overrides(stabilization_weight=1.0)
    # The regularizers start at 75% of the ceiling; stopping may come only after 3 evaluations of them.
    assert _stopping_rule(regularized).min_iterations == 750 + 30
