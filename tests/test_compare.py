"""`pglab compare`: grids end to end on the local engine (and on Ray where it is installed).

The Ray engine's test needs the optional extra (pip install 'pglab[ray]'); where Ray is not
installed it is skipped with that reason. CI installs only the dev extra, so CI covers the local
engine and the one-line error for a missing Ray; the Ray test runs on any machine with the extra.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pglab.errors import ConfigError
from pglab.lab.experiments import GridSpec, longest_first, plan, probe_step_seconds
from pglab.lab.runtask import RunTask
from tests.helpers import read_json, read_metrics

CRASHING_ENV = "tests.grid_envs:pglab-test/CrashesOnSeed1-v0"
KILLED_ENV = "tests.grid_envs:pglab-test/KilledOnSeed1-v0"


def grid_args(out: Path, *extra: str, agents: str = "reinforce,reinforce-rloo", seeds: str = "0-1") -> list[str]:
    return ["compare", "--agents", agents, "--envs", "CartPole-v1", "--seeds", seeds, "--total-steps", "3000",
            "--out", str(out), "--wandb-mode", "disabled", "--no-progress", *extra]  # fmt: skip


def statuses(out: Path) -> dict[str, dict]:
    return read_json(out / "status.json")


def without_timing(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in row.items() if k != "charts/SPS"} for row in rows]


def test_a_tiny_grid_runs_every_run_once_and_a_rerun_skips_them(tmp_path: Path, run_cli):
    out = tmp_path / "grid"
    code, stdout, _ = run_cli(*grid_args(out, "--workers", "2", "--name", "tiny"))
    assert code == 0
    runs = sorted(p.name for p in (out / "runs").iterdir())
    assert runs == sorted(f"CartPole-v1__{a}__{s}" for a in ("reinforce", "reinforce-rloo") for s in (0, 1))
    for run in runs:
        config = read_json(out / "runs" / run / "config.json")
        assert config["wandb_group"] == "tiny" and config["torch_threads"] == 1
        assert read_json(out / "runs" / run / "summary.json")["status"] == "finished"
        assert statuses(out)[run]["status"] == "finished" and statuses(out)[run]["action"] == "started"
        assert run in stdout
    assert read_json(out / "grid.json")["settings"]["total_steps"] == 3000
    first = {run: (out / "runs" / run / "metrics.jsonl").stat().st_mtime_ns for run in runs}

    code, stdout, _ = run_cli(*grid_args(out, "--workers", "2", "--name", "tiny"))
    assert code == 0
    assert {run: (out / "runs" / run / "metrics.jsonl").stat().st_mtime_ns for run in runs} == first
    assert {entry["action"] for entry in statuses(out).values()} == {"skipped"}

    code, stdout, _ = run_cli("report", str(out))
    assert code == 0 and "4 finished runs of 4" in stdout
    assert (out / "report" / "CartPole-v1_curves.png").stat().st_size > 0


def test_a_failing_run_is_reported_and_the_others_finish(tmp_path: Path, run_cli):
    out = tmp_path / "grid"
    args = ["compare", "--agents", "reinforce", "--envs", CRASHING_ENV, "--seeds", "0-2", "--total-steps", "2000",
            "--set", "num_envs=1", "--out", str(out), "--wandb-mode", "disabled", "--no-progress"]  # fmt: skip
    code, stdout, stderr = run_cli(*args)
    assert code == 1
    assert "1 of 3 runs failed" in stderr and "rerun the same command" in stderr
    failed = "tests.grid_envs-pglab-test-CrashesOnSeed1-v0__reinforce__1"
    entries = statuses(out)
    assert entries[failed]["status"] == "failed"
    assert "RuntimeError: simulator crashed" in entries[failed]["error"]
    assert next(line for line in stdout.splitlines() if "simulator crashed" in line).startswith(failed)
    assert sorted(e["status"] for run, e in entries.items() if run != failed) == ["finished", "finished"]

    # a rerun retries the failed run only; the failed attempt (it never checkpointed) is kept aside
    code, _, stderr = run_cli(*args)
    assert code == 1 and "1 of 3 runs failed" in stderr
    assert [e["action"] for e in statuses(out).values()].count("skipped") == 2
    assert [p.name.startswith(failed) for p in (out / "attempts").iterdir()] == [True]


def test_a_grid_with_an_interrupted_run_does_not_end_as_if_complete(tmp_path: Path, run_cli):
    out = tmp_path / "grid"
    env = CRASHING_ENV.replace("CrashesOnSeed1", "InterruptedOnSeed1")
    code, _, stderr = run_cli("compare", "--agents", "reinforce", "--envs", env, "--seeds", "0-2", "--total-steps",
                              "4000", "--set", "num_envs=1", "--out", str(out), "--wandb-mode", "disabled",
                              "--no-progress")  # fmt: skip
    assert code == 1
    assert stderr.strip().splitlines()[-1] == (
        f"1 of 3 runs were interrupted before their budget (see {out}/status.json); rerun the same command to "
        "continue them from their checkpoints"
    )
    entries = statuses(out)
    assert sorted(e["status"] for e in entries.values()) == ["finished", "finished", "interrupted"]


def test_a_worker_killed_under_one_run_fails_that_run_and_the_queued_runs_still_run(tmp_path: Path, run_cli):
    """A worker SIGKILLed (out of memory, a segfault) breaks its process pool: the runs it had not begun go
    to a fresh pool instead of being recorded as failed runs that never ran."""
    out = tmp_path / "grid"
    code, _, stderr = run_cli("compare", "--agents", "reinforce", "--envs", KILLED_ENV, "--seeds", "0-3",
                              "--total-steps", "2000", "--set", "num_envs=1", "--workers", "1", "--out", str(out),
                              "--wandb-mode", "disabled", "--no-progress")  # fmt: skip
    assert code == 1 and "1 of 4 runs failed" in stderr
    entries = statuses(out)
    killed = KILLED_ENV.replace(":", "-").replace("/", "-") + "__reinforce__1"
    assert entries[killed]["status"] == "failed" and entries[killed]["error"].startswith("worker crashed")
    assert sorted(e["status"] for run, e in entries.items() if run != killed) == ["finished"] * 3


def test_a_pool_whose_workers_die_before_any_run_begins_fails_the_runs_once(tmp_path: Path):
    from pglab.lab.engines import run_local
    from pglab.lab.runtask import RunTask
    from tests.grid_envs import KillsItsWorker

    tasks = [RunTask(KillsItsWorker(str(tmp_path / f"run{i}")), resume=False) for i in range(2)]
    outcomes = list(run_local(tasks, workers=1))  # ends: a fresh pool is not tried again and again
    assert [(o.run, o.status, o.action) for o in outcomes] == [("run0", "failed", "not started"),
                                                               ("run1", "failed", "not started")]  # fmt: skip
    assert all(o.error == "worker crashed: BrokenProcessPool: no worker could start the run" for o in outcomes)


def test_planning_resumes_checkpointed_runs_and_moves_partial_ones_aside(tmp_path: Path):
    spec = GridSpec(agents=("reinforce",), envs=("CartPole-v1",), seeds=(0, 1, 2, 3), out=tmp_path, total_steps=1000)
    runs = tmp_path / "runs"
    for seed, files in {0: {"summary.json": '{"status": "finished"}'},
                        1: {"config.json": "{}", "checkpoint.pt": "", "summary.json": '{"status": "interrupted"}'},
                        2: {"metrics.jsonl": '{"global_step": 8}\n'}}.items():  # fmt: skip
        (runs / f"CartPole-v1__reinforce__{seed}").mkdir(parents=True)
        for name, text in files.items():
            (runs / f"CartPole-v1__reinforce__{seed}" / name).write_text(text)
    tasks, finished = plan(spec)
    assert [o.seed for o in finished] == [0]
    assert [(t.config.seed, t.resume) for t in tasks] == [(1, True), (2, False), (3, False)]
    (moved,) = (tmp_path / "attempts").iterdir()
    assert moved.name.startswith("CartPole-v1__reinforce__2__")
    assert (moved / "metrics.jsonl").read_text() == '{"global_step": 8}\n'
    assert not (runs / "CartPole-v1__reinforce__2").exists()


def test_the_longest_expected_runs_start_first(tmp_path: Path):
    spec = GridSpec(
        agents=("reinforce", "reinforce-rloo"), envs=("CartPole-v1", "Acrobot-v1"), seeds=(0, 1), out=tmp_path,
        total_steps=10_000,
    )  # fmt: skip
    tasks, _ = plan(spec)
    half_done = tasks[0].run_dir  # CartPole-v1 reinforce seed 0 ran half its budget before an interruption
    half_done.mkdir(parents=True)
    (half_done / "summary.json").write_text('{"status": "interrupted", "global_step": 5000}')
    tasks[0] = RunTask(tasks[0].config, resume=True)
    order = longest_first(tasks, {"CartPole-v1": 1e-5, "Acrobot-v1": 1e-4})
    names = [(t.config.env, t.config.agent, t.config.seed) for t in order]
    assert names[:4] == [("Acrobot-v1", a, s) for a in ("reinforce", "reinforce-rloo") for s in (0, 1)]
    assert names[-1] == ("CartPole-v1", "reinforce", 0)  # half its budget left: the shortest run
    assert sorted(names) == sorted((t.config.env, t.config.agent, t.config.seed) for t in tasks)


def test_the_workers_imports_start_before_the_grid_is_planned(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The local engine's fork server (torch, the training code) is started before planning, not at the first run."""
    from pglab.lab import engines, experiments

    calls: list[str] = []

    class Planned(Exception):
        pass

    def plan_stops(spec: GridSpec) -> None:
        calls.append("plan")
        raise Planned

    monkeypatch.setattr(engines, "warm_up", lambda engine: calls.append(f"warm_up {engine}"))
    monkeypatch.setattr(experiments, "plan", plan_stops)
    with pytest.raises(Planned):
        experiments.run_grid(GridSpec(agents=("reinforce",), envs=("CartPole-v1",), seeds=(0,), out=tmp_path))
    assert calls == ["warm_up local", "plan"]


def test_a_finished_grids_rerun_starts_no_workers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Nothing left to run: no fork server (its imports are seconds of CPU), the runs recorded as skipped."""
    from pglab.lab import engines, experiments

    spec = GridSpec(agents=("reinforce",), envs=("CartPole-v1",), seeds=(0, 1), out=tmp_path, total_steps=1000)
    for config in spec.configs():
        Path(config.run_dir).mkdir(parents=True)
        (Path(config.run_dir) / "summary.json").write_text(json.dumps({"status": "finished", "global_step": 1024}))
    calls: list[str] = []
    monkeypatch.setattr(engines, "warm_up", lambda engine: calls.append(engine))
    result = experiments.run_grid(spec, progress=False)
    assert calls == [] and [o.action for o in result.outcomes] == ["skipped", "skipped"]

    (Path(spec.configs()[1].run_dir) / "summary.json").write_text(json.dumps({"status": "running"}))
    monkeypatch.setattr(experiments, "plan", lambda spec: ([], []))  # the warm-up is all this test looks at
    experiments.run_grid(spec, progress=False)
    assert calls == ["local"]


def test_a_grids_own_process_never_imports_torch(tmp_path: Path):
    """The grid's process checks, plans and records; only its workers train: torch (seconds to import, and
    to collect at exit) stays out of it, whether the grid runs its runs or, rerun, finds them finished. The
    fork server (the workers' imports, the grid's longest wait) starts before this process imports even numpy."""
    args = grid_args(tmp_path / "grid", agents="reinforce", seeds="0")
    probe = (
        "import sys\nfrom pglab.cli import main\nfrom pglab.lab import engines\n"
        "warm_up = engines.warm_up\n"
        "engines.warm_up = lambda engine: (print('numpy' in sys.modules), warm_up(engine))\n"
        f"for _ in range(2):\n    try:\n        main({args!r})\n    except SystemExit as exc:\n"
        "        assert not exc.code, exc.code\n"
        "print('torch' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert [line for line in done.stdout.split() if line in ("True", "False")] == ["False", "False"]
    assert statuses(tmp_path / "grid")["CartPole-v1__reinforce__0"]["action"] == "skipped"


def test_the_fork_server_starts_deaf_to_ctrl_c_and_the_grid_keeps_its_handler(monkeypatch: pytest.MonkeyPatch):
    """A new process inherits an ignored SIGINT: the server's imports (seconds) are not cut short by a Ctrl-C
    with a traceback of its own; this process's handler is back once the server has started."""
    from multiprocessing import forkserver

    from pglab.lab import engines

    seen = []
    monkeypatch.setattr(forkserver, "ensure_running", lambda: seen.append(signal.getsignal(signal.SIGINT)))
    before = signal.getsignal(signal.SIGINT)
    engines.warm_up("local")
    engines.warm_up("ray")  # Ray starts its own workers: nothing to warm up
    assert seen == [signal.SIG_IGN] and signal.getsignal(signal.SIGINT) is before


def test_each_worker_starts_with_every_import_of_a_run_done_and_the_collector_frozen():
    """The fork server imports what every run needs once and freezes those objects before forking: no worker
    pays the imports, and neither the workers' collections nor the fork server's exit at the grid's end walk
    them. Not torch._dynamo, which no run of pglab's agents imports (tests/test_speed_equivalence.py)."""
    from concurrent.futures import ProcessPoolExecutor

    from pglab.lab.engines import _process_context
    from tests.grid_envs import worker_state

    context = _process_context()
    if context.get_start_method() != "forkserver":
        pytest.skip("this platform has no fork server: each worker imports what it needs itself (spawn)")
    with ProcessPoolExecutor(1, mp_context=context) as pool:
        state = pool.submit(worker_state).result()
    assert state["imported"] == [
        "pglab.core.train",
        "torch.utils.tensorboard",
        "pglab.agents.gumbel_agent",
        "pglab.envs",
    ]
    assert state["plug-ins loaded"] == 0  # third-party code stays out of the fork server: each worker loads it
    assert state["frozen"] > 100_000  # torch's objects, not a handful
    assert state["exits at once"]  # the fork server skips its teardown at the grid's end...
    probe = "import atexit; atexit.register(print, 'exited as usual'); import pglab.lab.preload"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert done.stdout == "exited as usual\n"  # ...but imported elsewhere, the module leaves the exit alone


def test_probed_step_costs_rank_acrobot_above_cartpole():
    costs = probe_step_seconds(["CartPole-v1", "Acrobot-v1", "NoSuchEnv-v0"])
    assert 0 < costs["CartPole-v1"] < costs["Acrobot-v1"] < 1.0  # RK4 in Python vs one numpy step for all
    assert costs["NoSuchEnv-v0"] == 1.0


def wait_for(condition, process: subprocess.Popen, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the grid did not get there in time"
        time.sleep(0.02)


def test_an_interrupted_grid_resumes_where_it_stopped(tmp_path: Path):
    out = tmp_path / "grid"
    args = ["compare", "--agents", "reinforce", "--envs", "CartPole-v1", "--seeds", "0-2", "--total-steps", "40000",
            "--set", "num_envs=1", "--checkpoint-every", "2048", "--workers", "1", "--out", str(out),
            "--wandb-mode", "disabled"]  # fmt: skip
    env = {**os.environ, "WANDB_MODE": "disabled", "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen([sys.executable, "-m", "pglab", *args], env=env, start_new_session=True, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    run = [out / "runs" / f"CartPole-v1__reinforce__{seed}" for seed in range(3)]
    wait_for(lambda: (run[1] / "checkpoint.pt").exists(), process)  # one env: run 1 lasts seconds, not 0.5 s
    assert json.loads((run[0] / "summary.json").read_text())["status"] == "finished"
    os.killpg(process.pid, signal.SIGINT)  # Ctrl-C reaches the whole process group, workers included
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    entries = statuses(out)
    assert [entries[r.name]["status"] for r in run] == ["finished", "interrupted", "interrupted"]
    assert entries[run[2].name]["action"] == "not started" and not run[2].exists()
    assert read_json(run[1] / "summary.json")["status"] == "interrupted"

    result = subprocess.run([sys.executable, "-m", "pglab", *args, "--no-progress"], env=env, capture_output=True,
                            text=True, timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert [statuses(out)[r.name]["action"] for r in run] == ["skipped", "resumed", "started"]
    steps = [row["global_step"] for row in read_metrics(run[1])]
    assert steps == sorted(set(steps)) and steps[-1] == read_json(run[1] / "summary.json")["global_step"] >= 40000


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--agents", "reinforce,nope"], "unknown agent 'nope'"),
        (["--seeds", "3-1"], "the range 3-1 is empty"),
        (["--seeds", "a"], "expected numbers and ranges"),
        (["--set", "ema_decay=0.9"], "reinforce on CartPole-v1: unknown --set key 'ema_decay'"),
        (["--envs", "CartPol-v1"], "unknown environment 'CartPol-v1'"),
        (["--workers", "0"], "--workers must be at least 1"),
        (["--ray-address", "auto"], "--ray-address is for --engine ray"),
        (["--set", "normalize_advantages=standardize"], "under --protocol matched the estimators would not differ"),
        (["--sweep", "lr=1e-3,3e-3", "--tune-seeds", "0-2"], "--tune-seeds and --seeds overlap in 0"),
        (["--tune-seeds", "5"], "needs both --sweep"),
        (["--sweep", "lr"], "expected KEY=v1,v2"),
        (["--sweep", "lr=1e-3", "--tune-seeds", "5", "--criterion", "steps-to-target"], "needs --target-return"),
        (["--sweep", "lr=-1", "--tune-seeds", "5"], "lr=-1.0 must be a positive number"),
    ],
)
def test_bad_grid_input_gives_one_line_and_runs_nothing(tmp_path: Path, run_cli, args: list[str], message: str):
    base = {"--agents": "reinforce", "--envs": "CartPole-v1", "--seeds": "0", "--total-steps": "1000"}
    base.update(dict(zip(args[::2], args[1::2], strict=True)))
    code, _, stderr = run_cli("compare", *[x for kv in base.items() for x in kv], "--out", str(tmp_path / "g"),
                              "--no-progress", "--wandb-mode", "disabled")  # fmt: skip
    assert code == 2 and stderr.startswith("error: ") and message in stderr and len(stderr.strip().splitlines()) == 1
    assert not (tmp_path / "g" / "runs").exists()


def test_a_rerun_with_other_settings_is_refused(tmp_path: Path, run_cli):
    out = tmp_path / "grid"
    assert run_cli(*grid_args(out, agents="reinforce", seeds="0"))[0] == 0
    args = grid_args(out, agents="reinforce", seeds="0")
    args[args.index("--total-steps") + 1] = "6000"
    code, _, stderr = run_cli(*args)
    assert code == 2 and "holds a grid run with total_steps=3000, not 6000" in stderr


def test_the_ray_engine_without_ray_says_what_to_install(tmp_path: Path, run_cli, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError, as where it is not installed
    code, _, stderr = run_cli(*grid_args(tmp_path / "g", "--engine", "ray"))
    assert code == 2 and stderr.strip() == "error: the ray engine needs Ray: pip install 'pglab[ray]'"
    assert not (tmp_path / "g").exists()


def test_the_ray_engine_runs_the_same_runs_as_the_local_engine(tmp_path: Path, run_cli):
    ray = pytest.importorskip("ray", reason="the Ray engine needs the ray extra: pip install 'pglab[ray]'")
    code, _, stderr = run_cli(*grid_args(tmp_path / "ray", "--engine", "ray", "--workers", "2"))
    assert code == 0, stderr
    assert not ray.is_initialized()  # the local Ray instance it started is shut down again
    assert run_cli(*grid_args(tmp_path / "local", "--workers", "2"))[0] == 0
    for run in sorted((tmp_path / "local" / "runs").iterdir()):
        assert statuses(tmp_path / "ray")[run.name]["status"] == "finished"
        assert without_timing(read_metrics(tmp_path / "ray" / "runs" / run.name)) == without_timing(read_metrics(run))


def test_train_options_reach_every_run_and_the_grid_keeps_its_own_fields(tmp_path: Path):
    spec = GridSpec(agents=("reinforce", "reinforce-rloo"), envs=("CartPole-v1",), seeds=(0, 1), out=tmp_path,
                    name="g", train_options={"vectorization": "sync"})  # fmt: skip
    spec.validate()
    configs = spec.configs()
    assert [(c.vectorization, c.wandb_group, c.torch_threads, c.progress) for c in configs] == [
        ("sync", "g", 1, False)
    ] * 4
    assert [Path(c.run_dir).name for c in configs][:2] == ["CartPole-v1__reinforce__0", "CartPole-v1__reinforce__1"]
    with pytest.raises(ConfigError, match="train option 'seed' is not one a grid passes through"):
        GridSpec(
            agents=("reinforce",), envs=("CartPole-v1",), seeds=(0,), out=tmp_path, train_options={"seed": 1}
        ).validate()
