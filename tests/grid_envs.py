"""An environment plug-in for the grid tests: CartPole that crashes in the runs seeded 1.

Loaded as ``tests.grid_envs:pglab-test/CrashesOnSeed1-v0`` (Gymnasium's module:EnvId syntax), so the
grid's worker processes import it the way they import any third-party environment.
"""

from __future__ import annotations

import os
import signal
import time

import gymnasium as gym


class CrashesOnSeed1(gym.Wrapper):
    """CartPole whose copy reset with seed 1 raises on its 300th step: one run of a grid fails."""

    def __init__(self) -> None:
        super().__init__(gym.make("CartPole-v1"))
        self.doomed = False
        self.steps = 0

    def reset(self, *, seed=None, options=None):
        if seed is not None:
            self.doomed = seed == 1
        return self.env.reset(seed=seed, options=options)

    def step(self, action):
        self.steps += 1
        if self.doomed and self.steps == 300:
            raise RuntimeError("simulator crashed")
        return self.env.step(action)


gym.register("pglab-test/CrashesOnSeed1-v0", entry_point=CrashesOnSeed1)


class RaisesAfter(gym.Wrapper):
    """An environment whose ``at``-th step, counted over all its copies, raises RuntimeError(message).

    The count is class-wide (reset ``RaisesAfter.steps`` before a run): a vector of copies fails once.
    """

    steps = 0

    def __init__(self, env_id: str, at: int, message: str) -> None:
        super().__init__(gym.make(env_id))
        self.at, self.message = at, message

    def step(self, action):
        RaisesAfter.steps += 1
        if RaisesAfter.steps == self.at:
            raise RuntimeError(self.message)
        return self.env.step(action)


gym.register(
    "pglab-test/Exploding-v0", entry_point=RaisesAfter, kwargs={"env_id": "CartPole-v1", "at": 700,
                                                               "message": "simulator exploded"}
)  # fmt: skip


class StuckOnSeed1(CrashesOnSeed1):
    """CartPole whose copy reset with seed 1 never returns from its 300th step.

    ``native=True`` stands for a step stuck in native code: it blocks the signals Ctrl-C and the
    --step-timeout watchdog send, so no Python handler can run while it sleeps.
    """

    def __init__(self, native: bool = False) -> None:
        super().__init__()
        self.native = native

    def step(self, action):
        self.steps += 1
        if self.doomed and self.steps == 300:
            if self.native:
                signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGUSR1})
            time.sleep(3600)
        return self.env.step(action)


gym.register("pglab-test/StuckOnSeed1-v0", entry_point=StuckOnSeed1)
gym.register("pglab-test/NativeStuckOnSeed1-v0", entry_point=StuckOnSeed1, kwargs={"native": True})


class SignalledOnSeed1(CrashesOnSeed1):
    """CartPole whose copy reset with seed 1 sends ``signum`` to its own process on its 300th step.

    SIGINT: one worker of a grid interrupted (``kill -INT`` on that worker), the grid itself not.
    SIGKILL: a grid worker dying under a run (the kernel's out-of-memory killer, a segfault in native code).
    """

    def __init__(self, signum: int) -> None:
        super().__init__()
        self.signum = signum

    def step(self, action):
        self.steps += 1
        if self.doomed and self.steps == 300:
            os.kill(os.getpid(), self.signum)
        return self.env.step(action)


gym.register("pglab-test/InterruptedOnSeed1-v0", entry_point=SignalledOnSeed1, kwargs={"signum": signal.SIGINT})
gym.register("pglab-test/KilledOnSeed1-v0", entry_point=SignalledOnSeed1, kwargs={"signum": signal.SIGKILL})


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


class KillsItsWorker:
    """A run's config that kills the worker process unpickling it: a worker that dies before any run begins."""

    def __init__(self, run_dir: str) -> None:
        self.run_dir, self.env, self.agent, self.seed = run_dir, "CartPole-v1", "reinforce", 0

    def __reduce__(self):
        return _die, ()


def worker_state() -> dict[str, object]:
    """What a grid worker process holds before any run: called in the local engine's workers by test_compare."""
    import gc
    import sys

    from pglab.core.plugins import load_agents

    imported = (
        "pglab.core.train",
        "torch._dynamo",
        "torch.utils.tensorboard",
        "pglab.agents.gumbel_agent",
        "pglab.envs",
    )
    from pglab.lab import preload

    return {
        "exits at once": preload.EXITS_AT_ONCE,
        "frozen": gc.get_freeze_count(),
        "imported": [name for name in imported if name in sys.modules],
        "plug-ins loaded": load_agents.cache_info().currsize,
    }
