"""Reliability (issue 11, part A): one writer per run directory, no state from a non-finite update,
a full disk, cut metrics rows, budgets, and what Ctrl-C says was saved."""

from __future__ import annotations

import errno
import importlib
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

import pglab
from pglab.core.plugins import load_agents
from pglab.errors import NonFiniteLossError, StorageError
from pglab.io.checkpoint import load_checkpoint, save_checkpoint
from pglab.io.rundir import LOCK_NAME
from tests.helpers import read_json, read_metrics, run_pglab_subprocess

QUICK = ("--wandb-mode", "disabled", "--no-progress")


def one_line_error(code: int, err: str) -> str:
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def small_run(run_dir: Path, **kwargs) -> dict:
    options = {"agent": "reinforce", "env": "CartPole-v1", "total_steps": 1024, "run_dir": str(run_dir),
               "wandb_mode": "disabled", "progress": False, **kwargs}  # fmt: skip
    return pglab.train(**options)


# --- one writer per run directory -------------------------------------------------------------


def start_training(run_dir: Path, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "WANDB_MODE": "disabled"}
    return subprocess.Popen([sys.executable, "-m", "pglab", "train", "--run-dir", str(run_dir), "--no-progress", *args],
                            stderr=subprocess.PIPE, text=True, env=env)  # fmt: skip


def wait_for_rows(run_dir: Path, rows: int, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 120
    path = run_dir / "metrics.jsonl"
    while not path.exists() or len(path.read_text().splitlines()) < rows:
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.01)


def test_a_second_writer_is_refused_naming_the_holder(tmp_path: Path, run_cli):
    """The issue's case: a second training, a resume and eval's write into a run directory under training."""
    run_dir = tmp_path / "run"
    first = start_training(run_dir, "--agent", "reinforce", "--total-steps", "10000000", "--checkpoint-every", "1024")
    try:
        wait_for_rows(run_dir, 2, first)
        holder = f"{run_dir} is in use by pglab train (pid {first.pid} on host {socket.gethostname()})"
        for args in (
            ("train", "--agent", "reinforce", "--seed", "1", "--run-dir", str(run_dir), *QUICK),
            ("train", "--resume", str(run_dir), "--no-progress"),
            ("eval", str(run_dir), "--episodes", "1"),
        ):
            line = one_line_error(*run_cli(*args)[::2])
            assert line.startswith(f"error: {holder}; wait for it to end or stop it"), line
        assert not (run_dir / "eval.json").exists()
        # eval may still write its result elsewhere while the run directory is busy
        code, _, err = run_cli("eval", str(run_dir), "--episodes", "1", "--json", str(tmp_path / "e.json"))
        assert code == 0, err
    finally:
        first.send_signal(signal.SIGINT)
        first.communicate(timeout=120)
    assert read_json(run_dir / "config.json")["seed"] == read_json(run_dir / "summary.json")["seed"] == 0
    steps = [row["global_step"] for row in read_metrics(run_dir)]
    assert steps == sorted(set(steps))  # one writer: no step twice


def test_a_lock_left_by_a_dead_process_is_taken_over_with_a_note(tmp_path: Path, capsys):
    run_dir = tmp_path / "run"
    small_run(run_dir, checkpoint_every=1024)
    # What a killed holder leaves: its record, but no flock (the kernel dropped it with the process)
    (run_dir / LOCK_NAME).write_text(json.dumps({"pid": 4242, "host": "elsewhere", "command": "resume"}))
    capsys.readouterr()
    summary = pglab.resume(run_dir, total_steps=2048, progress=False)
    assert summary["status"] == "finished" and summary["global_step"] == 2048
    assert capsys.readouterr().err.splitlines() == [
        f"note: {run_dir} was last locked by pglab resume (pid 4242 on host elsewhere), which ended without "
        "releasing it; taking it over"
    ]
    assert (run_dir / LOCK_NAME).read_text() == ""  # released cleanly


def test_a_folder_that_is_not_an_empty_or_pglab_one_is_refused(tmp_path: Path, run_cli):
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "config.json").write_text('{"mine": true}')
    line = one_line_error(*run_cli("train", "--run-dir", str(foreign), *QUICK)[::2])
    assert "is not empty and is not a pglab run (it holds 'config.json')" in line
    assert (foreign / "config.json").read_text() == '{"mine": true}'
    done = tmp_path / "done"
    small_run(done)
    line = one_line_error(*run_cli("train", "--run-dir", str(done), *QUICK)[::2])
    assert f"already holds a run; choose another --run-dir, or continue it with --resume {done}" in line


# --- a non-finite update changes nothing ------------------------------------------------------


class NanRewardCartPole(gym.Wrapper):
    """CartPole whose rewards are NaN from its ``poisoned_from``-th step on (counted over all copies)."""

    steps = 0
    poisoned_from: int | None = None

    def __init__(self) -> None:
        super().__init__(gym.make("CartPole-v1"))

    def step(self, action):
        observation, reward, terminated, truncated, info = self.env.step(action)
        NanRewardCartPole.steps += 1
        if self.poisoned_from is not None and NanRewardCartPole.steps >= self.poisoned_from:
            reward = float("nan")
        return observation, reward, terminated, truncated, info


gym.register("pglab-test/NanRewardCartPole-v0", entry_point=NanRewardCartPole)


def tensors_of(value) -> list[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, dict):
        return [t for v in value.values() for t in tensors_of(v)]
    if isinstance(value, list | tuple):
        return [t for v in value for t in tensors_of(v)]
    return []


@pytest.mark.parametrize("agent", sorted(load_agents()))
def test_nan_rewards_leave_a_checkpoint_that_resumes_cleanly(tmp_path: Path, agent: str):
    """Every registered agent: the batch with NaN rewards is discarded, the checkpoint holds the state
    before it (finite, the EMA baseline included), and once the environment is healthy the run resumes."""
    run_dir = tmp_path / "run"
    NanRewardCartPole.steps, NanRewardCartPole.poisoned_from = 0, 150  # in the 3rd batch of 64 steps
    options = {"agent": agent, "env": "pglab-test/NanRewardCartPole-v0", "num_envs": 2, "overrides": {"num_steps": 32},
               "total_steps": 320, "checkpoint_every": 64, "vectorization": "sync"}  # fmt: skip
    with pytest.raises(NonFiniteLossError):
        small_run(run_dir, **options)
    summary = read_json(run_dir / "summary.json")
    assert summary["status"] == "diverged" and summary["global_step"] == 128
    assert summary["error"].startswith("NonFiniteLossError: ")
    checkpoint = load_checkpoint(run_dir / "checkpoint.pt")
    assert checkpoint["global_step"] == 128
    assert all(torch.isfinite(t).all() for t in tensors_of(checkpoint["agent"]))
    assert all(math.isfinite(v) for v in checkpoint["agent"].values() if isinstance(v, float))
    assert all(math.isfinite(r) for r in checkpoint["collector"]["stats"]["last100"])

    NanRewardCartPole.poisoned_from = None  # the environment is healthy again
    summary = pglab.resume(run_dir, progress=False)
    assert summary["status"] == "finished" and summary["global_step"] == 320
    rows = read_metrics(run_dir)
    assert [row["global_step"] for row in rows] == list(range(64, 321, 64))
    assert all(np.isfinite(row["losses/policy_loss"]) for row in rows)


def test_reinforce_ema_moves_its_baseline_only_after_a_finite_update():
    from pglab.core.train import TrainConfig, build_run

    run = build_run(TrainConfig(agent="reinforce-ema", wandb_mode="disabled", num_envs=2,
                                overrides={"num_steps": 16}), Path("unused"))  # fmt: skip
    run.collector.reset(0)
    batch = run.collector.collect(run.agent)
    run.agent.update(batch)
    baseline = run.agent.running_return
    batch.rewards[3, 1] = float("nan")
    with pytest.raises(NonFiniteLossError):
        run.agent.update(batch)
    assert run.agent.running_return == baseline and math.isfinite(baseline)
    run.envs.close()


# --- a full disk ------------------------------------------------------------------------------


def no_space(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_a_full_disk_in_torch_save_is_one_line_and_leaves_the_previous_checkpoint(tmp_path: Path, monkeypatch):
    """torch reports a full disk as a RuntimeError raised while handling the OSError."""
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, {"agent": {"generation": 1}})

    def torch_full_disk(obj, f):
        f.write(b"partial bytes")
        try:
            no_space()
        except OSError:
            raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 704 vs 598") from None

    monkeypatch.setattr(torch, "save", torch_full_disk)
    with pytest.raises(StorageError, match="No space left on device; the previous checkpoint is intact"):
        save_checkpoint(path, {"agent": {"generation": 2}})
    monkeypatch.undo()
    assert load_checkpoint(path)["agent"]["generation"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]


def test_a_full_disk_while_logging_cuts_nothing_and_the_run_resumes(tmp_path: Path, monkeypatch, run_cli):
    run_dir = tmp_path / "r"
    real_write, writes = os.write, []

    def write_then_fill(fd, data):
        if Path(f"/proc/self/fd/{fd}").resolve() == (run_dir / "metrics.jsonl").resolve():
            writes.append(len(data))
            if len(writes) == 3:  # the 3rd row: part of it reaches the file, then the disk is full
                real_write(fd, data[:17])
                no_space()
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", write_then_fill)
    code, _, err = run_cli("train", "--agent", "reinforce", "--run-dir", str(run_dir), "--total-steps", "8192",
                           "--checkpoint-every", "1024", *QUICK)  # fmt: skip
    line = one_line_error(code, err)
    assert f"could not write {run_dir / 'metrics.jsonl'}: No space left on device" in line
    assert f"free some space, then run pglab train --resume {run_dir}" in line
    assert [row["global_step"] for row in read_metrics(run_dir)] == [1024, 2048]  # no cut row
    assert read_json(run_dir / "summary.json")["status"] == "failed"
    monkeypatch.undo()
    code, _, err = run_cli("train", "--resume", str(run_dir), "--no-progress")
    assert code == 0, err
    assert [row["global_step"] for row in read_metrics(run_dir)] == list(range(1024, 8193, 1024))


@pytest.mark.parametrize("name", ["summary.json", "config.json"])
def test_a_full_disk_while_writing_a_json_file_leaves_no_temporary_file(tmp_path: Path, monkeypatch, name, run_cli):
    run_dir = tmp_path / "r"
    real_fsync = os.fsync

    def fsync_fills(fd):
        if Path(os.readlink(f"/proc/self/fd/{fd}")).name == f".{name}.tmp":
            no_space()
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync_fills)
    code, _, err = run_cli("train", "--agent", "reinforce", "--run-dir", str(run_dir), "--total-steps", "2048", *QUICK)
    assert f"could not write {run_dir / name}: No space left on device" in one_line_error(code, err)
    assert not [p for p in run_dir.iterdir() if p.name.endswith(".tmp")]
    if name == "summary.json":
        monkeypatch.undo()
        code, _, err = run_cli("train", "--resume", str(run_dir), "--no-progress")
        assert code == 0, err
        assert read_json(run_dir / "summary.json")["status"] == "finished"


TMPFS_SCRIPT = """
set -u
mount -t tmpfs -o size=1m tmpfs "$MNT"
head -c "$FILL" /dev/zero > "$MNT/filler"
"$PY" -m pglab train --agent reinforce --run-dir "$MNT/run" --total-steps 16384 --checkpoint-every 1024 \
    --wandb-mode disabled --no-progress 2> "$OUT/train.err"
echo $? > "$OUT/train.code"
ls -A "$MNT/run" > "$OUT/files"
cp "$MNT/run/metrics.jsonl" "$OUT/metrics_at_failure.jsonl"
rm "$MNT/filler"
"$PY" -m pglab train --resume "$MNT/run" --no-progress 2> "$OUT/resume.err"
echo $? > "$OUT/resume.code"
cp "$MNT/run/metrics.jsonl" "$MNT/run/summary.json" "$OUT/"
"""


def test_a_real_full_disk_end_to_end(tmp_path: Path):
    """A run on a 1 MiB tmpfs that fills up: one line, exit 2, nothing cut; resumable once space is freed.

    Needs a mount namespace (``unshare -rm``, no root needed where user namespaces are enabled).
    """
    probe = subprocess.run(["unshare", "-rm", "sh", "-c", f"mount -t tmpfs -o size=1m tmpfs {tmp_path}"],
                           capture_output=True, text=True)  # fmt: skip
    if probe.returncode != 0:
        pytest.skip(f"this machine cannot mount a tmpfs in a user namespace: {probe.stderr.strip()}")
    mount, out = tmp_path / "mnt", tmp_path / "out"
    mount.mkdir()
    out.mkdir()
    env = {**os.environ, "MNT": str(mount), "OUT": str(out), "PY": sys.executable, "FILL": str(900 * 1024),
           "PYTHONUNBUFFERED": "1"}  # fmt: skip
    subprocess.run(["unshare", "-rm", "sh", "-c", TMPFS_SCRIPT], env=env, timeout=300, check=True)
    train_err = (out / "train.err").read_text()
    assert (out / "train.code").read_text().strip() == "2", train_err
    lines = train_err.strip().splitlines()
    assert len(lines) == 1 and "No space left on device" in lines[0], train_err
    assert not [name for name in (out / "files").read_text().split() if name.endswith(".tmp")]
    cut = [line for line in (out / "metrics_at_failure.jsonl").read_text().splitlines() if not line.endswith("}")]
    assert cut == []
    assert (out / "resume.code").read_text().strip() == "0", (out / "resume.err").read_text()
    steps = [json.loads(line)["global_step"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert steps == list(range(1024, 16385, 1024))
    assert read_json(out / "summary.json")["status"] == "finished"


# --- cut metrics rows -------------------------------------------------------------------------


def test_a_cut_metrics_row_is_quarantined_on_resume_and_said_in_one_line(tmp_path: Path, capsys):
    from pglab.lab.report import build_report

    run_dir = tmp_path / "run"
    small_run(run_dir, total_steps=4096, checkpoint_every=1024)
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    lines[1] = lines[1][:25]  # cut mid-file, as a full disk once left it
    (run_dir / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    capsys.readouterr()
    build_report(run_dir, tmp_path / "report")  # read-only: keeps the line, says so
    assert capsys.readouterr().err.splitlines() == [
        f"note: {run_dir / 'metrics.jsonl'}: line 2 cut mid-write, left out of the curves (the file is left as it is)"
    ]
    pglab.resume(run_dir, total_steps=6144, progress=False)
    notes = [line for line in capsys.readouterr().err.splitlines() if line.startswith("note:")]
    assert notes == [
        f"note: 1 line(s) of {run_dir / 'metrics.jsonl'} cut mid-write (line 2) moved to "
        f"{run_dir / 'metrics.quarantine.txt'}"
    ]
    assert (run_dir / "metrics.quarantine.txt").read_text() == f"metrics.jsonl:2: {lines[1]}\n"
    assert [row["global_step"] for row in read_metrics(run_dir)] == [1024, 3072, 4096, 5120, 6144]


def test_a_session_under_way_never_leaves_an_earlier_finished_summary_behind(tmp_path: Path, monkeypatch):
    """A resumed run killed mid-session must not pass for finished (report, compare): its summary says running."""
    from pglab.io.runlog import RunLog
    from pglab.lab.report import build_report

    run_dir, killed = tmp_path / "run", tmp_path / "killed"
    small_run(run_dir, checkpoint_every=1024)
    real_log = RunLog.log

    def log_then_copy(self, row):
        real_log(self, row)
        if row["global_step"] == 2048:  # the directory as a kill at this instant would leave it
            shutil.copytree(run_dir, killed)

    monkeypatch.setattr(RunLog, "log", log_then_copy)
    pglab.resume(run_dir, total_steps=3072, progress=False)
    assert read_json(killed / "summary.json")["status"] == "running"
    assert [run.finished for run in build_report(killed, tmp_path / "report").runs] == [False]


# --- saying what is true ----------------------------------------------------------------------


def test_a_budget_that_rounds_up_to_whole_batches_says_so(tmp_path: Path, run_cli):
    code, _, err = run_cli("train", "--agent", "reinforce", "--num-envs", "10", "--total-steps", "3000",
                           "--run-dir", str(tmp_path / "r"), *QUICK)  # fmt: skip
    assert code == 0, err
    assert err.strip() == (
        "note: the run takes 3840 steps, not 3000: it trains on whole batches of num_envs 10 x num_steps 128 "
        "= 1280 steps"
    )
    assert read_json(tmp_path / "r" / "summary.json")["global_step"] == 3840


def test_an_early_ctrl_c_says_nothing_was_saved(tmp_path: Path, monkeypatch, run_cli):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(importlib.import_module("pglab.core.train"), "build_run", interrupted)
    code, _, err = run_cli("train", "--run-dir", str(tmp_path / "r"), *QUICK)
    assert code == 130 and err.strip() == "interrupted before anything was written: nothing was saved"
    assert not (tmp_path / "r").exists()


# --- no hang ----------------------------------------------------------------------------------

STUCK = "tests.grid_envs:pglab-test/StuckOnSeed1-v0"
NATIVE_STUCK = "tests.grid_envs:pglab-test/NativeStuckOnSeed1-v0"


def test_a_stuck_environment_fails_the_run_with_the_reason(tmp_path: Path, run_cli):
    run_dir = tmp_path / "r"
    started = time.monotonic()
    code, _, err = run_cli("train", "--agent", "reinforce", "--env", STUCK, "--seed", "1", "--num-envs", "1",
                           "--total-steps", "2048", "--step-timeout", "1", "--run-dir", str(run_dir),
                           *QUICK)  # fmt: skip
    assert time.monotonic() - started < 60
    line = one_line_error(code, err)
    assert "an environment step took longer than --step-timeout 1 s (stuck?); the run stopped at step 256" in line
    summary = read_json(run_dir / "summary.json")
    assert summary["status"] == "failed" and summary["error"].startswith("StepTimeoutError: an environment step")


def test_a_step_stuck_in_native_code_ends_the_process_with_the_reason(tmp_path: Path):
    run_dir = tmp_path / "r"
    result = run_pglab_subprocess("train", "--agent", "reinforce", "--env", NATIVE_STUCK, "--seed", "1",
                                  "--num-envs", "1", "--total-steps", "2048", "--step-timeout", "1",
                                  "--run-dir", str(run_dir), *QUICK, timeout=120)  # fmt: skip
    line = one_line_error(result.returncode, result.stderr)
    assert line.endswith("(stuck in native code: the process ends)")
    assert read_json(run_dir / "summary.json")["status"] == "failed"


def test_a_stuck_run_fails_and_the_grid_goes_on(tmp_path: Path, run_cli):
    out = tmp_path / "grid"
    code, _, err = run_cli("compare", "--agents", "reinforce", "--envs", STUCK, "--seeds", "0-1", "--set",
                           "num_envs=1", "--total-steps", "1024", "--step-timeout", "2", "--workers", "2",
                           "--out", str(out), *QUICK)  # fmt: skip
    assert code == 1, err
    entries = read_json(out / "status.json")
    stuck = entries["tests.grid_envs-pglab-test-StuckOnSeed1-v0__reinforce__1"]
    assert stuck["status"] == "failed" and "took longer than --step-timeout 2 s" in stuck["error"]
    assert entries["tests.grid_envs-pglab-test-StuckOnSeed1-v0__reinforce__0"]["status"] == "finished"


def test_ctrl_c_ends_a_grid_with_every_child_reaped_and_status_complete(tmp_path: Path):
    """Ctrl-C three times (the terminal signals the whole process group) while a run is stuck in native
    code: the grid ends at once, records every run, and leaves no process behind."""
    out = tmp_path / "grid"
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "WANDB_MODE": "disabled"}
    grid = subprocess.Popen([sys.executable, "-m", "pglab", "compare", "--agents", "reinforce", "--envs", NATIVE_STUCK,
                             "--seeds", "0-1", "--set", "num_envs=1", "--total-steps", "1000000", "--step-timeout",
                             "600", "--workers", "2", "--out", str(out), *QUICK],
                            env=env, stderr=subprocess.PIPE, text=True, start_new_session=True)  # fmt: skip
    stuck_metrics = out / "runs" / "tests.grid_envs-pglab-test-NativeStuckOnSeed1-v0__reinforce__1" / "metrics.jsonl"
    deadline = time.monotonic() + 120
    try:
        while not stuck_metrics.exists():  # the run seeded 1 is stuck at its 300th step, in its first batch...
            assert grid.poll() is None and time.monotonic() < deadline, grid.communicate()
            time.sleep(0.1)
        time.sleep(2)  # (...and its metrics.jsonl exists before its first batch)
        for _ in range(3):
            os.killpg(grid.pid, signal.SIGINT)
            time.sleep(0.5)
        _, err = grid.communicate(timeout=60)
    finally:  # a failure here must not leave the stuck grid behind
        if grid.poll() is None:
            os.killpg(grid.pid, signal.SIGKILL)
    assert grid.returncode == 130, err
    assert f"\ninterrupted: {out / 'status.json'} records every run" in err, err
    entries = read_json(out / "status.json")
    assert sorted(entry["status"] for entry in entries.values()) == ["interrupted", "interrupted"]
    deadline = time.monotonic() + 15
    with pytest.raises(ProcessLookupError):  # no worker, no fork server left in the grid's process group
        while time.monotonic() < deadline:  # (the fork server exits on its own once the grid has)
            os.killpg(grid.pid, 0)
            time.sleep(0.2)


def test_online_wandb_without_network_holds_training_back_a_few_seconds_at_most(tmp_path, monkeypatch, run_cli):
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    monkeypatch.setenv("WANDB_BASE_URL", "http://127.0.0.1:9")  # nothing listens: no network
    monkeypatch.setattr("pglab.io.runlog.ONLINE_START_WAIT_S", 1.0)
    started = time.monotonic()
    code, _, err = run_cli("train", "--agent", "reinforce", "--total-steps", "2048", "--run-dir", str(tmp_path / "r"),
                           "--wandb-mode", "online", "--no-progress")  # fmt: skip
    assert code == 0, err
    assert time.monotonic() - started < 60  # was about 113 s
    warnings = [line for line in err.splitlines() if line.startswith("warning:")]
    assert warnings == [
        "warning: W&B has not started within 1 s (no network?); training goes on, W&B gets every row if it starts "
        "later; metrics.jsonl has everything"
    ]
    assert len(read_metrics(tmp_path / "r")) == 2


def test_ctrl_c_during_a_run_says_what_was_saved(tmp_path: Path, monkeypatch, run_cli):
    from pglab.io.runlog import RunLog

    run_dir, real_log = tmp_path / "r", RunLog.log

    def log_then_ctrl_c(self, row):
        real_log(self, row)
        if row["global_step"] == 2048:
            signal.raise_signal(signal.SIGINT)

    monkeypatch.setattr(RunLog, "log", log_then_ctrl_c)
    code, _, err = run_cli("train", "--agent", "reinforce", "--run-dir", str(run_dir), "--total-steps", "8192", *QUICK)
    assert code == 130
    assert err.strip().splitlines()[-1] == (
        f"interrupted: {run_dir} holds the checkpoint of step 2048, summary.json and the metrics up to step 2048; "
        f"continue with pglab train --resume {run_dir}"
    )


def test_a_second_grid_in_the_same_directory_is_refused(tmp_path: Path, run_cli):
    from pglab.io.rundir import DirectoryLock

    out = tmp_path / "grid"
    with DirectoryLock(out, "compare"):  # a grid under way in OUT (this process holds its lock)
        code, _, err = run_cli("compare", "--agents", "reinforce", "--envs", "CartPole-v1", "--seeds", "0",
                               "--total-steps", "1024", "--out", str(out), *QUICK)  # fmt: skip
    line = one_line_error(code, err)
    assert line.startswith(f"error: {out} is in use by pglab compare (pid {os.getpid()} on host ")
    assert not (out / "runs").exists()


def test_an_update_that_turns_non_finite_after_the_actor_stepped_leaves_the_agent_as_before_the_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """reinforce-value fits its critic after the actor step: a NaN there must undo the actor step too."""
    from pglab.agents.reinforce_agent import ReinforceAgent

    from pglab.io.checkpoint import load_checkpoint

    common = {"agent": "reinforce-value", "env": "CartPole-v1", "seed": 3, "num_envs": 2, "num_steps": 64,
              "critic_update": "after", "wandb_mode": "disabled", "progress": False, "tensorboard": False}  # fmt: skip
    pglab.train(**common, total_steps=256, run_dir=str(tmp_path / "two"))  # two good updates
    good = load_checkpoint(tmp_path / "two" / "checkpoint.pt")["agent"]

    fit, calls = ReinforceAgent._fit_critic, []

    def third_fit_diverges(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 3:  # the third update: its actor has already stepped
            raise NonFiniteLossError("the loss became nan")
        return fit(self, *args, **kwargs)

    monkeypatch.setattr(ReinforceAgent, "_fit_critic", third_fit_diverges)
    with pytest.raises(NonFiniteLossError):
        pglab.train(**common, total_steps=1024, run_dir=str(tmp_path / "diverged"))
    saved = load_checkpoint(tmp_path / "diverged" / "checkpoint.pt")
    assert saved["global_step"] == 256
    for part in ("policy", "critic"):
        for name, tensor in good[part].items():
            assert torch.equal(saved["agent"][part][name], tensor), (part, name)


def test_taking_a_free_lock_reads_its_record_once_and_waits_for_nothing(tmp_path: Path, monkeypatch):
    """Under our own flock nobody writes the record: an empty one (new, or released cleanly) is read once.
    Only a reader outside the lock waits for a live holder's record to appear (up to 1 s)."""
    from pglab.io import rundir

    sleeps = []
    monkeypatch.setattr(rundir.time, "sleep", sleeps.append)
    for _ in range(2):  # a new directory, then one released cleanly
        lock = rundir.DirectoryLock(tmp_path / "run", "train").acquire()
        lock.release()
    assert sleeps == []
    assert rundir._read_holder(tmp_path / "run" / LOCK_NAME) == {} and len(sleeps) == 49  # the outside reader waits


@pytest.mark.parametrize("batching", [{"batch_episodes": 2}, {"num_steps": 16}], ids=["whole-episodes", "windows"])
def test_a_checkpoint_without_an_update_count_resumes_with_the_right_count(tmp_path: Path, batching):
    """Checkpoints written before they counted updates: windows of num_envs x num_steps give the count from
    the step; whole episodes (a varying number of steps per update) from metrics.jsonl's rows, one per update."""
    from pglab.io.checkpoint import load_checkpoint, save_checkpoint

    run_dir = tmp_path / "run"
    small_run(run_dir, total_steps=256, num_envs=2, overrides=batching)
    checkpoint = load_checkpoint(run_dir / "checkpoint.pt")
    assert checkpoint.pop("updates") == len(read_metrics(run_dir))
    save_checkpoint(run_dir / "checkpoint.pt", checkpoint)
    pglab.resume(run_dir, total_steps=512, progress=False)
    assert load_checkpoint(run_dir / "checkpoint.pt")["updates"] == len(read_metrics(run_dir)) > 0


def test_a_reader_looking_at_a_free_lock_does_not_make_taking_it_fail(tmp_path: Path):
    """in_use() holds a shared flock for a moment; a run starting in that moment must still get its lock."""
    import fcntl
    import threading

    from pglab.io.rundir import DirectoryLock, in_use

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / LOCK_NAME).touch()
    reader = os.open(run_dir / LOCK_NAME, os.O_RDONLY)
    fcntl.flock(reader, fcntl.LOCK_SH | fcntl.LOCK_NB)  # a reader caught mid-look
    threading.Timer(0.1, os.close, (reader,)).start()  # it finishes looking 0.1 s later
    with DirectoryLock(run_dir, "train"):
        assert in_use(run_dir)
    assert not in_use(run_dir)
