"""W&B logging, checked by reading the offline run's files back (tests/wandb_records.py), no server.

One small offline CartPole run (module fixture) is inspected from every side: identity, config,
history against metrics.jsonl, summary against summary.json, the results table and the checkpoint
artifact. The other tests cover the modes and the failures that must never stop training.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from pglab.cli import main
from pglab.core.train import TrainConfig
from tests.helpers import read_json, read_metrics
from tests.wandb_records import BLOCK_SIZE, OfflineRun, find_run_file

TOTAL_STEPS = 3072
# Small batches give many log rows, so the run file spans several 32 KiB blocks of the log format.
TRAIN_ARGS = ("train", "--agent", "reinforce", "--env", "CartPole-v1", "--seed", "3", "--num-envs", "2")
TRAIN_ARGS += ("--set", "num_steps=16", "--total-steps", str(TOTAL_STEPS), "--no-progress")
ROWS = TOTAL_STEPS // 32


def isolate_wandb(monkeypatch: pytest.MonkeyPatch, home: Path, mode: str | None) -> None:
    """Keep W&B's staging, cache and settings folders (and any stray ./wandb) inside ``home``."""
    for var in ("WANDB_DATA_DIR", "WANDB_CACHE_DIR", "WANDB_CONFIG_DIR", "WANDB_DIR"):
        monkeypatch.setenv(var, str(home / var.lower()))
    if mode is None:
        monkeypatch.delenv("WANDB_MODE", raising=False)
    else:
        monkeypatch.setenv("WANDB_MODE", mode)
    monkeypatch.chdir(home)


def patch_wandb_process(monkeypatch: pytest.MonkeyPatch, home: Path, source: str) -> None:
    """Run ``source`` first thing in the W&B process (pglab.io.wandb_process): how a test breaks W&B there.

    The code is a ``sitecustomize`` module on the PYTHONPATH the W&B process inherits.
    """
    folder = home / "wandb-patch"
    folder.mkdir()
    (folder / "sitecustomize.py").write_text(textwrap.dedent(source))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(folder), os.environ.get("PYTHONPATH")])))


def pglab(*args: str) -> int:
    try:
        main(list(args))
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


@pytest.fixture(scope="module")
def offline_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, OfflineRun]:
    """An offline run chosen through $WANDB_MODE (no --wandb-mode), in a named comparison group."""
    home = tmp_path_factory.mktemp("wandb-offline")
    run_dir = home / "run"
    with pytest.MonkeyPatch.context() as monkeypatch:
        isolate_wandb(monkeypatch, home, mode="offline")
        code = pglab(*TRAIN_ARGS, "--run-dir", str(run_dir), "--wandb-group", "grid-7", "--wandb-tag", "smoke")
    assert code == 0
    return run_dir, OfflineRun(find_run_file(run_dir))


def test_run_identity(offline_run: tuple[Path, OfflineRun]) -> None:
    _, run = offline_run
    assert run.run.project == "pglab"
    assert run.run.run_group == "grid-7"
    assert run.run.job_type == "reinforce"
    assert run.run.display_name == "CartPole-v1__reinforce__3"
    assert list(run.run.tags) == ["smoke"]
    assert run.exit_code == 0
    kinds = {record.WhichOneof("record_type") for record in run.records}
    assert "stats" not in kinds and "environment" not in kinds  # the lean settings took effect


def test_config_is_the_resolved_config(offline_run: tuple[Path, OfflineRun]) -> None:
    run_dir, run = offline_run
    logged = {k: v for k, v in run.config.items() if k != "_wandb"}
    assert logged == read_json(run_dir / "config.json")
    assert logged["hyperparameters"]["num_steps"] == 16


def test_history_is_metrics_jsonl_keyed_by_global_step(offline_run: tuple[Path, OfflineRun]) -> None:
    run_dir, run = offline_run
    assert find_run_file(run_dir).stat().st_size > 2 * BLOCK_SIZE  # the reader crossed block boundaries
    rows = read_metrics(run_dir)
    assert len(rows) == ROWS
    history = {row["global_step"]: row for row in run.history if "charts/SPS" in row}
    assert sorted(history) == [row["global_step"] for row in rows] == list(range(32, TOTAL_STEPS + 1, 32))
    for row in rows:
        logged = history[row["global_step"]]
        assert {k: logged[k] for k in row} == pytest.approx(row, rel=1e-6)
    assert any("charts/episodic_return" in row for row in rows)
    # Every metric is plotted against global_step, not W&B's own _step.
    step_of = {d.glob_name or d.name: d.step_metric for d in run.metric_defs}
    assert step_of == {"global_step": "", "*": "global_step"}


def test_summary_holds_summary_json(offline_run: tuple[Path, OfflineRun]) -> None:
    run_dir, run = offline_run
    summary = read_json(run_dir / "summary.json")
    assert summary["status"] == "finished"
    assert summary["global_step"] == TOTAL_STEPS
    assert {k: run.summary[k] for k in summary} == summary


def test_results_table_is_the_summary_row(offline_run: tuple[Path, OfflineRun]) -> None:
    run_dir, run = offline_run
    (entry,) = [row for row in run.history if "results/_type" in row]
    assert entry["results/_type"] == "table-file"
    assert entry["global_step"] == TOTAL_STEPS
    table = json.loads((find_run_file(run_dir).parent / "files" / entry["results/path"]).read_text())
    (row,) = table["data"]
    summary = read_json(run_dir / "summary.json")
    assert dict(zip(table["columns"], row, strict=True)) == {c: summary[c] for c in table["columns"]}
    assert {"agent", "env", "seed", "return_mean_last100", "solved_at_step", "sps"} <= set(table["columns"])


def test_final_checkpoint_is_a_model_artifact(offline_run: tuple[Path, OfflineRun]) -> None:
    run_dir, run = offline_run
    (model,) = [a for a in run.artifacts if a.type == "model"]
    assert model.name == f"model-{run.run.run_id}"
    assert "final" in model.aliases
    assert json.loads(model.metadata)["global_step"] == TOTAL_STEPS
    (entry,) = model.manifest.contents
    checkpoint = (run_dir / "checkpoint.pt").read_bytes()
    assert entry.path == "checkpoint.pt"
    assert entry.size == len(checkpoint)
    assert entry.digest == base64.b64encode(hashlib.md5(checkpoint).digest()).decode()


def test_the_artifact_stages_inside_the_run_directory(offline_run: tuple[Path, OfflineRun]) -> None:
    """An offline run's staged checkpoint copy lives under run_dir/wandb, not in W&B's shared data folder."""
    run_dir, _ = offline_run
    checkpoint = (run_dir / "checkpoint.pt").read_bytes()
    staging = run_dir / "wandb" / "data" / "artifacts" / "staging"
    staged = [p for p in staging.iterdir() if p.read_bytes() == checkpoint]
    assert len(staged) == 1
    shared = run_dir.parent / "wandb_data_dir"  # where $WANDB_DATA_DIR pointed (isolate_wandb)
    assert not shared.exists() or not any(p.is_file() for p in shared.rglob("*"))


def assert_complete_run_without_wandb(run_dir: Path) -> None:
    rows = read_metrics(run_dir)
    assert [row["global_step"] for row in rows] == list(range(32, TOTAL_STEPS + 1, 32))
    assert all("charts/SPS" in row and "losses/policy_loss" in row for row in rows)
    assert read_json(run_dir / "summary.json")["status"] == "finished"
    assert (run_dir / "checkpoint.pt").is_file()


def warnings_in(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.strip()]


def test_disabled_creates_no_wandb_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, run_cli: Any) -> None:
    isolate_wandb(monkeypatch, tmp_path, mode=None)
    code, _, err = run_cli(*TRAIN_ARGS, "--run-dir", str(tmp_path / "run"), "--wandb-mode", "disabled")
    assert code == 0, err
    assert_complete_run_without_wandb(tmp_path / "run")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # no wandb/ anywhere, no W&B folders
    assert not (tmp_path / "run" / "wandb").exists()


def test_wandb_mode_environment_variable_is_honoured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert TrainConfig().wandb_mode == "disabled"
    monkeypatch.setenv("WANDB_MODE", "dryrun")  # wandb's older spelling of offline
    assert TrainConfig().wandb_mode == "offline"
    monkeypatch.delenv("WANDB_MODE")
    assert TrainConfig().wandb_mode == "offline"


def test_failed_wandb_start_warns_once_and_training_finishes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, run_cli: Any
) -> None:
    isolate_wandb(monkeypatch, tmp_path, mode="offline")
    patch_wandb_process(
        monkeypatch,
        tmp_path,
        """
        import wandb

        def refuse(*args, **kwargs):
            raise RuntimeError("no W&B service today")

        wandb.init = refuse
        """,
    )
    code, _, err = run_cli(*TRAIN_ARGS, "--run-dir", str(tmp_path / "run"))
    assert code == 0
    (line,) = warnings_in(err)
    assert line.startswith("warning: W&B could not start (RuntimeError: no W&B service today)")
    assert_complete_run_without_wandb(tmp_path / "run")


def test_wandb_failing_mid_run_warns_once_and_training_finishes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, run_cli: Any
) -> None:
    isolate_wandb(monkeypatch, tmp_path, mode="offline")
    calls = tmp_path / "calls.txt"
    patch_wandb_process(
        monkeypatch,
        tmp_path,
        f"""
        import wandb

        real_log = wandb.Run.log

        def log_then_break(self, data, *args, **kwargs):
            with open({str(calls)!r}, "a") as calls:
                calls.write(f"{{data['global_step']}}\\n")
            if sum(1 for _ in open({str(calls)!r})) > 5:
                raise OSError("the W&B service went away")
            real_log(self, data, *args, **kwargs)

        wandb.Run.log = log_then_break
        """,
    )
    code, _, err = run_cli(*TRAIN_ARGS, "--run-dir", str(tmp_path / "run"))
    assert code == 0
    (line,) = warnings_in(err)
    assert line.startswith("warning: W&B logging failed (OSError: the W&B service went away)")
    assert len(calls.read_text().splitlines()) == 6  # W&B was dropped at the first failure, not called again
    assert_complete_run_without_wandb(tmp_path / "run")
    broken = OfflineRun(find_run_file(tmp_path / "run"))
    assert broken.exit_code == 1  # the W&B run is closed as failed; the training run is not
    assert [row["global_step"] for row in broken.history if "charts/SPS" in row] == [32, 64, 96, 128, 160]


def test_capture_video_without_moviepy_is_one_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, run_cli: Any
) -> None:
    isolate_wandb(monkeypatch, tmp_path, mode="disabled")
    monkeypatch.setitem(sys.modules, "moviepy", None)  # what an interpreter without moviepy sees
    code, _, err = run_cli(*TRAIN_ARGS, "--run-dir", str(tmp_path / "run"), "--capture-video")
    assert code == 0
    (line,) = warnings_in(err)
    assert line.startswith("warning: --capture-video: recording a video needs moviepy")
    assert "pip install 'pglab[video]'" in line
    assert_complete_run_without_wandb(tmp_path / "run")
    assert not (tmp_path / "run" / "videos").exists()


def test_eval_video_holds_every_frame_of_one_episode(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import imageio_ffmpeg

    from pglab.lab.evaluate import evaluate

    isolate_wandb(monkeypatch, tmp_path, mode="disabled")
    assert pglab(*TRAIN_ARGS, "--run-dir", str(tmp_path / "run")) == 0
    video = tmp_path / "clips" / "episode.mp4"
    result = evaluate(tmp_path / "run", episodes=1, greedy=True, video=video)
    frames, _ = imageio_ffmpeg.count_frames_and_secs(str(video))
    assert (
        frames == result["returns"][0] + 1
    )  # CartPole: one reward per step; the first observation, then a frame a step
    assert sorted(p.name for p in video.parent.iterdir()) == ["episode.mp4"]


def test_capture_video_is_logged_to_wandb(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, run_cli: Any) -> None:
    isolate_wandb(monkeypatch, tmp_path, mode="offline")
    code, _, err = run_cli(*TRAIN_ARGS, "--run-dir", str(tmp_path / "run"), "--capture-video")
    assert code == 0, err
    assert warnings_in(err) == []
    video = tmp_path / "run" / "videos" / "eval.mp4"
    run_file = find_run_file(tmp_path / "run")
    (entry,) = [row for row in OfflineRun(run_file).history if "videos/eval/_type" in row]
    assert entry["videos/eval/_type"] == "video-file"
    assert entry["global_step"] == TOTAL_STEPS
    logged = run_file.parent / "files" / entry["videos/eval/path"]
    assert logged.read_bytes() == video.read_bytes()


def test_rows_logged_while_wandb_starts_reach_it_in_order_with_their_times(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, run_cli: Any
) -> None:
    isolate_wandb(monkeypatch, tmp_path, mode="offline")
    run_dir = tmp_path / "run"
    metrics = run_dir / "metrics.jsonl"
    patch_wandb_process(
        monkeypatch,
        tmp_path,
        f"""
        import os
        import time

        import wandb

        real_init = wandb.init

        def slow_init(*args, **kwargs):
            # Start W&B only once training has logged half its rows (it trains meanwhile).
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                if os.path.exists({str(metrics)!r}) and open({str(metrics)!r}).read().count("\\n") >= {ROWS // 2}:
                    break
                time.sleep(0.01)
            return real_init(*args, **kwargs)

        wandb.init = slow_init
        """,
    )
    code, _, err = run_cli(*TRAIN_ARGS, "--run-dir", str(run_dir))
    assert code == 0, err
    run = OfflineRun(find_run_file(run_dir))
    rows = [row for row in run.history if "charts/SPS" in row]
    assert [row["global_step"] for row in rows] == [row["global_step"] for row in read_metrics(run_dir)]
    stamps = [row["_timestamp"] for row in rows]
    assert stamps == sorted(stamps)
    assert stamps[0] < run.run.start_time.ToMicroseconds() / 1e6  # logged before the W&B run existed


def test_a_resumed_run_continues_its_wandb_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    isolate_wandb(monkeypatch, tmp_path, mode="offline")
    run_dir = tmp_path / "run"
    assert pglab(*TRAIN_ARGS, "--run-dir", str(run_dir), "--checkpoint-every", "1024") == 0
    first = OfflineRun(find_run_file(run_dir))
    assert pglab("train", "--resume", str(run_dir), "--total-steps", str(2 * TOTAL_STEPS), "--no-progress") == 0
    files = sorted((run_dir / "wandb").glob("offline-run-*/run-*.wandb"), key=lambda p: p.stat().st_mtime)
    assert len(files) == 2  # one offline file per session; `wandb sync` uploads both into one run
    second = OfflineRun(files[-1])
    assert second.run.run_id == first.run.run_id == json.loads((run_dir / "config.json").read_text())["wandb_run_id"]
    steps = [row["global_step"] for row in second.history if "charts/SPS" in row]
    assert steps[0] > TOTAL_STEPS and steps[-1] == 2 * TOTAL_STEPS


def test_one_wandb_process_serves_the_runs_of_one_training_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A grid's worker runs many runs: wandb is imported once, in one W&B process, not once per run."""
    from pglab.io.runlog import _WandbProcess

    isolate_wandb(monkeypatch, tmp_path, mode="offline")
    pids = []
    for seed in (0, 1):
        assert pglab(*TRAIN_ARGS, "--seed", str(seed), "--run-dir", str(tmp_path / f"run{seed}")) == 0
        assert _WandbProcess._idle is not None
        pids.append(_WandbProcess._idle._process.pid)
        run = OfflineRun(find_run_file(tmp_path / f"run{seed}"))
        assert run.exit_code == 0 and [r["global_step"] for r in run.history if "charts/SPS" in r][-1] == TOTAL_STEPS
    assert pids[0] == pids[1]
    monkeypatch.setenv("WANDB_PROJECT", "elsewhere")  # W&B reads its environment at start: a new process
    assert pglab(*TRAIN_ARGS, "--run-dir", str(tmp_path / "run2")) == 0
    assert _WandbProcess._idle._process.pid != pids[0]


def test_a_dying_wandb_process_is_one_warning_and_training_finishes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, run_cli: Any
) -> None:
    isolate_wandb(monkeypatch, tmp_path, mode="offline")
    patch_wandb_process(
        monkeypatch,
        tmp_path,
        """
        import os

        import wandb

        def die(self, data, *args, **kwargs):
            os._exit(3)  # the W&B process is killed mid-run (out of memory, a crash in wandb-core)

        wandb.Run.log = die
        """,
    )
    code, _, err = run_cli(*TRAIN_ARGS, "--run-dir", str(tmp_path / "run"))
    assert code == 0
    (line,) = warnings_in(err)
    assert line == "warning: the W&B process exited with code 3; metrics.jsonl still has everything"
    assert_complete_run_without_wandb(tmp_path / "run")
