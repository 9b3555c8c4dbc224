"""The one training loop: collect a batch, update the agent, log, repeat.

Read :func:`run_loop` top to bottom; everything an agent does differently lives in the agent. The
run directory it writes is a contract (DESIGN.md, "Contracts"): config.json, metrics.jsonl,
summary.json, checkpoint.pt and, unless disabled, wandb/.

Runs survive faults: checkpoints hold everything needed to continue (agent, RNG, the environments'
own state, episode statistics), so ``pglab train --resume DIR`` continues an interrupted run and
produces the same numbers the uninterrupted run would have. Ctrl-C stops at the end of the current
update (a second Ctrl-C stops at once), so the checkpoint written then is exact.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import secrets
import signal
import sys
import threading
import time
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import torch

from pglab.core.agent import Agent, Preset, resolve_preset
from pglab.core.allocator import keep_freed_memory
from pglab.core.config import TrainConfig, default_run_dir
from pglab.core.device import DeviceActor, move_agent, resolve_device
from pglab.core.environment import make_vector_env, preprocessing, refuse_unnamed_module
from pglab.core.limits import check_run_memory
from pglab.core.plugins import get_agent
from pglab.core.policy import PolicyNetwork
from pglab.core.reproducibility import seed_everything, versions
from pglab.core.rollout import Collector
from pglab.errors import (
    CheckpointError,
    ConfigError,
    NonFiniteLossError,
    PglabError,
    RunInterrupted,
    StepTimeoutError,
    StorageError,
)
from pglab.io import envstate
from pglab.io.checkpoint import CHECKPOINT, load_checkpoint, save_checkpoint
from pglab.io.configfile import train_config_toml
from pglab.io.progress import Progress
from pglab.io.rundir import DirectoryLock, check_new_run_dir
from pglab.io.runlog import RunLog, note, warn, write_json, write_text_atomic
from pglab.io.video import video_unavailable
from pglab.lab.runlist import metrics_row

SOLVED_WINDOW = 100  # episodes in the "last 100" mean that --target-return is checked against


@dataclass
class Run:
    """Everything a configuration builds; built the same way for a new run and for a resumed one."""

    config: TrainConfig
    preset: Preset
    envs: gym.vector.VectorEnv
    agent: Agent
    collector: Collector
    run_dir: Path
    resolved: dict[str, Any]
    diagnostics: Any = None  # pglab.diagnostics.grads.TrainingDiagnostics when --grad-diagnostics-every is set
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))  # the learner's
    global_step: int = 0
    updates: int = 0
    wall_s: float = 0.0  # training time of earlier sessions of this run (resume)
    checkpoint_step: int | None = None  # the step of the checkpoint on disk; None: none written yet

    @property
    def steps_per_update(self) -> int | None:
        """Environment steps per update; None when whole episodes make it vary (``batch_episodes``)."""
        return None if self.preset.batch_episodes else self.preset.num_envs * self.preset.num_steps


def build_run(config: TrainConfig, run_dir: Path) -> Run:
    config.validate()
    device = resolve_device(config.device)
    if device.type != "cpu" and config.grad_diagnostics_every:
        raise ConfigError("--grad-diagnostics-every measures on the CPU; train with --device cpu to use it")
    spec = get_agent(config.agent)
    overrides = dict(config.overrides)
    if config.num_envs is not None:
        overrides["num_envs"] = config.num_envs
    preset = resolve_preset(spec.preset, config.env.rpartition(":")[2], overrides, config.protocol)
    check_run_memory(preset, obs_dim=1, n_actions=2)  # the least any env needs: refuses 1e9 envs before making one
    torch.set_num_threads(config.torch_threads)
    keep_freed_memory()  # no page faults for each update's tensors (pglab.core.allocator); changes no number
    seed_everything(config.seed)
    envs = make_vector_env(config.env, preset.num_envs, config.vectorization, config.env_kwargs)
    try:
        check_run_memory(preset, gym.spaces.flatdim(envs.single_observation_space), int(envs.single_action_space.n))
    except ConfigError:
        envs.close()
        raise
    # Common random numbers: the policy is the first thing built from the seeded RNG, so the same seed
    # gives every agent the same initial policy weights; whatever the agent builds next (a critic, the
    # diagnostics) draws from a forked RNG, so the stream its actions are sampled from, and with it
    # the first batch of experience, is the same for every agent too.
    policy = PolicyNetwork(
        envs.single_observation_space, int(envs.single_action_space.n), preset.hidden_sizes, preset.activation
    )
    with torch.random.fork_rng(devices=[]):
        agent = spec.build(policy, envs.single_observation_space, envs.single_action_space, preset)
    move_agent(agent, device)  # built on the CPU: the same initial weights on every device
    resolved = {
        **dataclasses.asdict(config),
        "num_envs": preset.num_envs,  # the effective value, not None for "the preset's"
        "run_dir": str(run_dir),
        "hyperparameters": preset.to_dict(),
        "estimator_fields": list(preset.estimator_fields),
        "env_preprocessing": preprocessing(config.env.rpartition(":")[2]),  # Atari's wrappers; None elsewhere
        "learner_device": str(device),
        "observation_space": str(envs.single_observation_space),
        "action_space": str(envs.single_action_space),
        "versions": versions(),
    }
    diagnostics = None
    if config.grad_diagnostics_every:
        from pglab.diagnostics.grads import TrainingDiagnostics

        with torch.random.fork_rng(devices=[]):
            diagnostics = TrainingDiagnostics(
                config.env, config.env_kwargs, agent, preset.gamma, config.grad_diagnostics_samples, config.seed
            )
    collector = Collector(envs, policy.encoder, preset.num_steps, preset.batch_episodes)
    return Run(config, preset, envs, agent, collector, run_dir, resolved, diagnostics, device=device)


def train(config: TrainConfig | None = None, **kwargs: Any) -> dict[str, Any]:
    """Train one agent on one environment; returns the summary (also written to summary.json).

    ``pglab.train(agent="reinforce-rloo", env="CartPole-v1", total_steps=50_000)`` is the same as
    ``pglab train --agent reinforce-rloo --env CartPole-v1 --total-steps 50000``.
    """
    config = config or TrainConfig(**kwargs)
    config.validate()
    run_dir = Path(config.run_dir) if config.run_dir else default_run_dir(config)
    check_new_run_dir(run_dir)  # before building anything: a wrong --run-dir is refused at once
    if config.capture_video and (reason := video_unavailable()):
        warn(f"--capture-video: {reason}; the run goes on without a video")
        config = dataclasses.replace(config, capture_video=False)
    if config.wandb_run_id is None and config.wandb_mode != "disabled":
        config = dataclasses.replace(config, wandb_run_id=secrets.token_hex(4))
    # config.json records the effective W&B group and tags (a run's default group is its environment)
    config = dataclasses.replace(
        config,
        wandb_group=config.wandb_group or config.env,
        wandb_tags=tuple(config.wandb_tags) or (config.agent, config.env),
    )
    run = build_run(config, run_dir)
    try:
        lock = DirectoryLock(run_dir, "train").acquire()
    except BaseException:
        _close(run)
        raise
    try:
        check_new_run_dir(run_dir)  # again, under the lock: no other process started a run here meanwhile
        write_json(run_dir / "config.json", run.resolved)
        write_text_atomic(run_dir / "config.toml", train_config_toml(dataclasses.asdict(config)))
        run.collector.reset(config.seed)
        return run_loop(run)
    finally:
        lock.release()


def read_run_config(run_dir: Path) -> TrainConfig:
    """The TrainConfig saved in ``run_dir``/config.json; one CheckpointError or ConfigError line if unusable."""
    path = run_dir / "config.json"
    if not path.is_file():
        raise CheckpointError(f"{run_dir} is not a pglab run directory (no config.json); check the path")
    try:
        resolved = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path} cannot be read ({type(exc).__name__}: {exc})") from exc
    if not isinstance(resolved, dict):
        raise CheckpointError(f"{path} holds no configuration (a JSON object); it was not written by pglab")
    config = TrainConfig.from_resolved(resolved, source=str(path))
    config.validate()  # before anything reads it, even to say the run has finished
    return config


def resume(
    run_dir: str | Path,
    total_steps: int | None = None,
    progress: bool = True,
    trusted_modules: Collection[str] = (),
) -> dict[str, Any]:
    """Continue the run in ``run_dir`` from its last checkpoint; returns the final summary.

    The metrics rows logged after that checkpoint are dropped and produced again, so metrics.jsonl
    ends with no duplicate and no missing step. A run that stopped before its first checkpoint (a
    full disk, a crash) starts again from step 0 with its own configuration, which produces the same
    numbers, and says so in one line. An environment ``module:EnvId`` in config.json is
    made only if ``module`` is in ``trusted_modules`` (``--trust-env-module``) or already imported:
    resuming a run directory never runs code it carries.
    """
    run_dir = Path(run_dir)
    config = read_run_config(run_dir)
    refuse_unnamed_module(config.env, str(run_dir / "config.json"), trusted_modules)
    with DirectoryLock(run_dir, "resume"):
        config.run_dir, config.progress = str(run_dir), progress
        if total_steps is not None:
            config.total_steps = total_steps
        config.validate()  # an edited config.json is refused even when there is nothing left to train
        checkpoint = load_checkpoint(run_dir / CHECKPOINT) if (run_dir / CHECKPOINT).exists() else None
        if checkpoint is not None:
            _check_compatible(checkpoint, dataclasses.asdict(config), keys=("agent", "env"))
        if (finished := _finished_summary(run_dir)) is not None and total_steps is None:
            note(
                f"{run_dir} finished at step {finished['global_step']}; nothing to resume "
                "(give --total-steps to train it for longer)"
            )
            return finished
        run = build_run(config, run_dir)
        try:
            if checkpoint is None:
                note(f"{run_dir} has no checkpoint (the run stopped before its first); it starts again from step 0")
                run.collector.reset(config.seed)
            else:
                _restore(run, checkpoint)
            rows = _truncate_metrics(run_dir / "metrics.jsonl", run.global_step)
            if checkpoint is not None and "updates" not in checkpoint:  # written before checkpoints counted them
                run.updates = _updates_of_old_checkpoint(run, rows)
        except BaseException:
            _close(run)
            raise
        return run_loop(run)


def _restore(run: Run, checkpoint: dict[str, Any]) -> None:
    """Put the agent, the collector, the environments and torch's RNG back where the checkpoint left them."""
    _check_compatible(checkpoint, run.resolved)
    try:
        run.agent.load_state_dict(checkpoint["agent"])
    except (RuntimeError, KeyError, ValueError) as exc:  # torch's size mismatch / missing keys, a lost entry
        first = str(exc).strip().splitlines()[-1].strip() if str(exc).strip() else type(exc).__name__
        raise CheckpointError(
            f"the checkpoint's networks do not fit this agent as pglab builds it now ({first}); it was written by "
            "another version of pglab: resume it with that version, or start a new run"
        ) from exc
    run.global_step, run.wall_s = int(checkpoint["global_step"]), float(checkpoint["wall_s"])
    run.updates = int(checkpoint.get("updates", 0))  # an older checkpoint's: see _updates_of_old_checkpoint
    run.checkpoint_step = run.global_step
    collector, env_state = checkpoint["collector"], checkpoint["env_state"]
    if env_state is not None:
        env_state, returns = envstate.without_episode_statistics(env_state)
        if returns is not None:  # an older checkpoint's: its episode returns were kept by a wrapper
            collector = {**collector, "returns": torch.from_numpy(returns)}
    run.collector.load_state_dict(collector)
    if env_state is not None:
        envstate.restore(run.envs, env_state)
    else:
        note(f"{run.config.env}'s state could not be saved; the episodes in flight restart on resume")
        run.collector.reset(run.config.seed + run.global_step)
    torch.set_rng_state(checkpoint["torch_rng"])
    if run.device.type == "cuda" and checkpoint.get("cuda_rng") is not None:
        torch.cuda.set_rng_state(checkpoint["cuda_rng"], run.device)


def _close(run: Run, terminate: bool = False) -> None:
    """Close the environments; ``terminate``: end their worker processes without waiting (a stuck step)."""
    if terminate and isinstance(run.envs, gym.vector.AsyncVectorEnv):
        run.envs.close(terminate=True)
    else:
        run.envs.close()
    if run.diagnostics is not None:
        run.diagnostics.close()


def _finished_summary(run_dir: Path) -> dict[str, Any] | None:
    """The run's summary if it finished (its budget spent or its target reached), else None."""
    try:
        summary = json.loads((run_dir / "summary.json").read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return summary if isinstance(summary, dict) and summary.get("status") == "finished" else None


def _check_compatible(
    checkpoint: dict[str, Any],
    resolved: dict[str, Any],
    keys: tuple[str, ...] = ("agent", "env", "observation_space", "action_space"),
) -> None:
    """The checkpoint must be of this run's agent, env and spaces (``resolved``: config.json's or the run's)."""
    saved = json.loads(checkpoint["config_json"])
    for key in keys:
        if saved.get(key) != resolved.get(key):
            raise CheckpointError(
                f"the checkpoint is for {key} {saved.get(key)!r} but this run has {resolved.get(key)!r}; "
                "resume it with the configuration it was trained with"
            )


def _updates_of_old_checkpoint(run: Run, rows: int) -> int:
    """The updates before the checkpoint of a run whose checkpoint does not count them: each took
    ``steps_per_update`` steps, or, where whole episodes make that vary, wrote one of the ``rows`` of
    metrics.jsonl up to the checkpoint's step."""
    return run.global_step // run.steps_per_update if run.steps_per_update else rows


def _truncate_metrics(path: Path, global_step: int) -> int:
    """Keep the rows up to ``global_step``, atomically, and return how many; the rows after it are produced again.

    A line cut mid-write (a kill, a full disk) is moved to metrics.quarantine.txt beside it, with one
    line saying so: never dropped without a word.
    """
    if not path.exists():
        return 0
    kept, cut = [], []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        row = metrics_row(line, path, number)
        if row is None:
            cut.append((number, line))
        elif row["global_step"] <= global_step:
            kept.append(line)
    if cut:
        quarantine = path.with_name("metrics.quarantine.txt")
        with quarantine.open("a") as handle:
            handle.writelines(f"{path.name}:{number}: {line}\n" for number, line in cut)
        numbers = ", ".join(str(number) for number, _ in cut[:5]) + (", ..." if len(cut) > 5 else "")
        note(f"{len(cut)} line(s) of {path} cut mid-write (line {numbers}) moved to {quarantine}")
    write_text_atomic(path, "".join(line + "\n" for line in kept))
    return len(kept)


class _GracefulStop:
    """First Ctrl-C: finish the current update, then stop; a second one stops at once."""

    def __init__(self) -> None:
        self.requested = False

    def __call__(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        print("\nstopping after this update (Ctrl-C again to stop now)", file=sys.stderr)


@contextmanager
def _sigint_handler(handler: _GracefulStop) -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():  # signals reach the main thread only
        yield
        return
    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def run_loop(run: Run) -> dict[str, Any]:
    """Collect, update, log, checkpoint until the step budget or the target return is reached."""
    config, collector, agent = run.config, run.collector, run.agent
    actor = agent if run.device == torch.device("cpu") else DeviceActor(agent, run.device)
    per_update = run.steps_per_update
    # windows: whole updates, the budget rounded up to one; whole episodes: until the budget is passed
    budget = math.ceil(config.total_steps / per_update) * per_update if per_update else config.total_steps
    if per_update and budget != config.total_steps:  # every printed number stays true: say what will run
        note(
            f"the run takes {budget} steps, not {config.total_steps}: it trains on whole batches of num_envs "
            f"{run.preset.num_envs} x num_steps {run.preset.num_steps} = {per_update} steps"
        )
    log = RunLog(
        run.run_dir,
        run.resolved,
        config.wandb_mode,
        _wandb_settings(config),
        tensorboard=config.tensorboard,
        start_step=run.global_step,
    )
    bar = Progress(total=budget, initial=run.global_step, unit="step", enabled=config.progress)
    session_start, session_step = time.perf_counter(), run.global_step
    solved_at_step = solved_at_wall_s = None
    stop, status, error = _GracefulStop(), "running", None
    try:
        # Until this session ends, summary.json says "running": a killed session never leaves the
        # "finished" of an earlier one behind for report or compare to trust.
        write_json(run.run_dir / "summary.json", _summary(run, status, run.wall_s, None, None))
        with _sigint_handler(stop), _StepWatchdog(run):
            while run.global_step < budget and not stop.requested:
                # What the update may change, kept so that a non-finite update changes nothing: the batch
                # is discarded (its steps and episodes are not counted) and the checkpoint is the last good state.
                agent_state, stats_state = _detached_copy(agent.state_dict()), collector.stats.state_dict()
                batch = collector.collect(actor)
                update = run.updates
                measure = run.diagnostics is not None and update % config.grad_diagnostics_every == 0
                extra = run.diagnostics.measure(agent, update) if measure else {}  # before the update: same policy
                try:
                    metrics = {**agent.update(batch.to(run.device)), **extra}
                except NonFiniteLossError:
                    agent.load_state_dict(agent_state)
                    collector.stats.load_state_dict(stats_state)
                    raise
                steps = batch.num_steps * batch.num_envs  # every step taken, masked ones included
                previous_step, run.global_step, run.updates = run.global_step, run.global_step + steps, run.updates + 1
                elapsed = time.perf_counter() - session_start
                sps = (run.global_step - session_step) / elapsed
                log.log({"global_step": run.global_step, **collector.stats.drain(), **metrics, "charts/SPS": sps})
                mean100 = collector.stats.mean_last100()
                bar.update(steps, ret100="-" if mean100 is None else f"{mean100:.1f}", sps=f"{sps:,.0f}")
                every = config.checkpoint_every
                if every and run.global_step // every > previous_step // every:
                    _save(run, run.wall_s + elapsed)
                if _solved(config, collector, mean100):
                    solved_at_step, solved_at_wall_s = run.global_step, run.wall_s + elapsed
                    break
        status = "interrupted" if stop.requested else "finished"
    except KeyboardInterrupt:
        status = "killed"  # a second Ctrl-C, mid-update: the last checkpoint stays as it is
    except NonFiniteLossError as exc:
        status, error = "diverged", exc  # the agent is as it was before the batch: its weights are the last good ones
    except StorageError as exc:  # a full disk: nothing half-written is left, the last checkpoint stays as it is
        status, error = "failed", StorageError(f"{exc}; free some space, then run pglab train --resume {run.run_dir}")
    except BaseException as exc:
        status, error = "failed", exc  # e.g. the environment raised: the last checkpoint stays as it is
    bar.close()
    wall_s = run.wall_s + time.perf_counter() - session_start
    if status in ("finished", "interrupted", "diverged"):
        try:
            _save(run, wall_s)
        except StorageError as exc:
            status, error = "failed", exc
    summary = _summary(run, status, wall_s, solved_at_step, solved_at_wall_s, error)
    try:
        write_json(run.run_dir / "summary.json", summary)
    except StorageError as exc:
        error = error or exc  # the first failure is the one to report
    video = _eval_video(run) if config.capture_video and status == "finished" else None
    log.close(summary, 0 if status == "finished" else 1, checkpoint=run.run_dir / CHECKPOINT, video=video)
    _close(run, terminate=isinstance(error, StepTimeoutError))
    if error is not None:
        raise error
    if status in ("interrupted", "killed"):
        raise RunInterrupted(_what_was_saved(run))
    return summary


class _StepWatchdog:
    """``--step-timeout``: a run whose environment step takes longer than that fails, with the reason.

    A thread watches :attr:`Collector.step_started`. When a step overruns, it signals the main thread,
    whose handler raises StepTimeoutError inside the stuck step (Python code, sleeps and waits on a
    subprocess are interrupted at once): the run ends as failed, its last checkpoint kept. A step stuck
    in native code never returns to Python, so no handler can run: after a grace period the watchdog
    writes the run's summary as failed itself and ends the process with exit code 2 (in a grid, the
    worker process: the grid records the run as failed and goes on). Signals reach the main thread only:
    called from another thread, the run has no watchdog.
    """

    SIGNAL = signal.SIGUSR1  # not SIGALRM: code around a run (tests, schedulers) may time itself with alarms

    def __init__(self, run: Run):
        self.run = run
        self.timeout = run.config.step_timeout
        self.active = self.timeout is not None and threading.current_thread() is threading.main_thread()
        self._done = threading.Event()
        self._previous: Any = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> _StepWatchdog:
        if self.active:
            self._previous = signal.signal(self.SIGNAL, self._interrupt)
            self._thread = threading.Thread(target=self._watch, name="pglab-step-watchdog", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._thread is not None:
            self._done.set()
            self._thread.join()
            signal.signal(self.SIGNAL, self._previous)

    def _message(self) -> str:
        return (
            f"an environment step took longer than --step-timeout {self.timeout:g} s (stuck?); the run stopped "
            f"at step {self.run.global_step} with its last checkpoint; raise --step-timeout if the environment is "
            "merely slow"
        )

    def _interrupt(self, signum: int, frame: Any) -> None:
        if self.run.collector.step_started is not None:  # not if the step has returned meanwhile
            raise StepTimeoutError(self._message())

    def _watch(self) -> None:
        assert self.timeout is not None
        grace = max(5.0, self.timeout)
        while not self._done.wait(min(1.0, self.timeout / 4)):
            started = self.run.collector.step_started
            if started is None or time.monotonic() - started <= self.timeout:
                continue
            signal.pthread_kill(threading.main_thread().ident, self.SIGNAL)
            deadline = time.monotonic() + grace
            while self.run.collector.step_started == started and not self._done.wait(0.1):
                if time.monotonic() > deadline:
                    self._end_process()

    def _end_process(self) -> None:
        error = StepTimeoutError(f"{self._message()} (stuck in native code: the process ends)")
        summary = _summary(self.run, "failed", self.run.wall_s, None, None, error)
        with contextlib.suppress(PglabError):
            write_json(self.run.run_dir / "summary.json", summary)
        print(f"error: {error}", file=sys.stderr, flush=True)
        os._exit(2)


def _detached_copy(state: Any) -> Any:
    """``state`` with every tensor cloned and every container rebuilt: what later in-place updates cannot reach.

    Much cheaper than copy.deepcopy (about 0.1 ms against 1 ms for reinforce-value's state), which
    matters because the training loop keeps one per update.
    """
    if isinstance(state, torch.Tensor):
        return state.clone()
    if isinstance(state, dict):
        return {key: _detached_copy(value) for key, value in state.items()}
    if isinstance(state, list | tuple):
        return type(state)(_detached_copy(value) for value in state)
    return state


def _what_was_saved(run: Run) -> str:
    """The truth about an interrupted run's directory, for the line Ctrl-C ends with."""
    if run.checkpoint_step is None:
        checkpoint = "no checkpoint yet (pglab train --resume starts it again from step 0)"
    else:
        checkpoint = f"the checkpoint of step {run.checkpoint_step}"
    return (
        f"{run.run_dir} holds {checkpoint}, summary.json and the metrics up to step {run.global_step}; "
        f"continue with pglab train --resume {run.run_dir}"
    )


def _eval_video(run: Run) -> Path | None:
    """One episode of the trained policy as videos/eval.mp4, or None and a warning line if that fails."""
    from pglab.lab.evaluate import evaluate

    path = run.run_dir / "videos" / "eval.mp4"
    try:
        evaluate(run.run_dir, episodes=1, seed=run.config.seed, video=path)
    except Exception as exc:  # a video is a nicety: rendering problems must not lose the run's results
        warn(f"--capture-video: no video recorded ({type(exc).__name__}: {exc})")
        return None
    return path


def _solved(config: TrainConfig, collector: Collector, mean100: float | None) -> bool:
    """Whether the last 100 episodes' mean (``mean100``, computed once per update) reached the target."""
    return (
        config.target_return is not None
        and len(collector.stats.last100) == SOLVED_WINDOW
        and mean100 >= config.target_return
    )


def _wandb_settings(config: TrainConfig) -> dict[str, Any]:
    return {
        "project": config.wandb_project,
        "entity": config.wandb_entity,
        "group": config.wandb_group,
        "tags": config.wandb_tags,
    }


def _summary(
    run: Run,
    status: str,
    wall_s: float,
    solved_at_step: int | None,
    solved_at_wall_s: float | None,
    error: BaseException | None = None,
) -> dict[str, Any]:
    stats, config = run.collector.stats, run.config
    return {
        "agent": config.agent,
        "env": config.env,
        "seed": config.seed,
        "run_dir": str(run.run_dir),
        "status": status,
        "global_step": run.global_step,
        "wall_s": wall_s,
        "sps": run.global_step / wall_s if wall_s > 0 else 0.0,
        "episodes": stats.count,
        "return_mean_last100": stats.mean_last100(),
        "return_std_last100": stats.std_last100(),
        "solved_at_step": solved_at_step,
        "solved_at_wall_s": solved_at_wall_s,
        "target_return": config.target_return,
        "error": None if error is None else f"{type(error).__name__}: {error}",
    }


def _save(run: Run, wall_s: float) -> None:
    """Write the checkpoint of the current step (atomically: a failed write keeps the previous one)."""
    save_checkpoint(
        run.run_dir / CHECKPOINT,
        {
            "format": 1,
            "agent": run.agent.state_dict(),
            "agent_name": run.config.agent,
            "env": run.config.env,
            "seed": run.config.seed,
            "global_step": run.global_step,
            "updates": run.updates,
            "wall_s": wall_s,
            "config_json": json.dumps(run.resolved),
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state(run.device) if run.device.type == "cuda" else None,
            "collector": run.collector.state_dict(),
            "env_state": envstate.capture(run.envs),
            "versions": versions(),
        },
    )
    run.checkpoint_step = run.global_step
