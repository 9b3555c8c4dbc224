"""Property (issue 11.11): any value of any preset field or CLI number either trains or fails with one
line and exit code 2 -- never a traceback, never a hang.

Hypothesis draws an agent, a field (or a CLI number) and a value -- typed boundary values, huge
integers, NaN and infinities, junk text -- and runs ``pglab train`` in-process on a one-step bandit
with the smallest budget, under an alarm that fails the example if it has not returned. Kept to a
few dozen examples with a fixed seed so that the suite stays fast and the same on every run.
"""

from __future__ import annotations

import dataclasses
import itertools
import signal
import typing
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

import pglab
from pglab.core.plugins import load_agents

RUNS = itertools.count()
HANG_S = 60  # an example that has not returned by then counts as a hang

INTS = st.one_of(st.integers(-2, 4), st.sampled_from([0, -1, 64, 2**31, 2**63, 10**30]))
FLOATS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -0.0, 1e-300, 1e300, -1.0, 0.5, 1.0, 2.0, float("nan"), float("inf"), float("-inf")]),
)
JUNK = st.one_of(st.text(max_size=8), st.sampled_from(["", "1e30", "1,2", "[]", "none", "abc", "-0"]))


def text_for(hint: Any) -> st.SearchStrategy[str]:
    """What a user might write after ``--set field=`` for a field of type ``hint``: valid-looking or not."""
    if hint is bool:
        typed: st.SearchStrategy[str] = st.sampled_from(["true", "false", "1", "0", "yes"])
    elif hint is int:
        typed = INTS.map(str)
    elif hint is float:
        typed = FLOATS.map(repr)
    elif typing.get_origin(hint) is tuple:
        typed = st.lists(INTS, max_size=3).map(lambda values: ",".join(map(str, values)))
    else:
        typed = st.text(max_size=12)
    return st.one_of(typed, typed, JUNK)  # mostly typed values, some junk


AGENTS = load_agents()
FIELDS = sorted(
    {(name, f.name) for name, spec in AGENTS.items() for f in dataclasses.fields(spec.preset)},
)
# The CLI's numbers besides --set; --total-steps only small (a budget of 10**30 steps would run, not fail).
CLI_NUMBERS = {
    "--seed": INTS.map(str),
    "--total-steps": st.integers(-2, 64).map(str),
    "--num-envs": INTS.map(str),
    "--checkpoint-every": INTS.map(str),
    "--grad-diagnostics-every": st.one_of(st.integers(-2, 2), st.sampled_from([2**63])).map(str),
    "--target-return": FLOATS.map(repr),
}


@st.composite
def train_arguments(draw: st.DrawFn) -> list[str]:
    """An agent plus one preset field or one CLI number set to a drawn value."""
    if draw(st.booleans()):
        agent, name = draw(st.sampled_from(FIELDS))
        hint = typing.get_type_hints(AGENTS[agent].preset)[name]
        return ["--agent", agent, "--set", f"{name}={draw(text_for(hint))}"]
    flag = draw(st.sampled_from(sorted(CLI_NUMBERS)))
    return ["--agent", draw(st.sampled_from(sorted(AGENTS))), flag, draw(CLI_NUMBERS[flag])]


def _hang(signum: int, frame: Any) -> None:
    raise TimeoutError(f"no answer within {HANG_S} s: a hang")


@seed(11)
@settings(
    max_examples=30,
    deadline=None,  # timing is the alarm's business; the machine may be loaded
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(args=train_arguments())
def test_any_value_trains_or_fails_in_one_line(tmp_path: Path, run_cli, args: list[str]):
    run_dir = tmp_path / f"run{next(RUNS)}"  # a fresh directory for every example, repeats included
    code, err = run_within_alarm(
        run_cli,
        ["train", "--env", "pglab/CategoricalBandit-v0", "--total-steps", "1", *args, "--run-dir", str(run_dir),
         "--wandb-mode", "disabled", "--no-progress"],
    )  # fmt: skip
    assert_runs_or_one_line(code, err, args)


def run_within_alarm(run_cli, args: list[str]) -> tuple[int, str]:
    """``pglab ARGS`` in-process; a TimeoutError (a hang) if it has not returned within HANG_S."""
    previous = signal.signal(signal.SIGALRM, _hang)
    signal.alarm(HANG_S)
    try:
        code, _, err = run_cli(*args)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    return code, err


def assert_runs_or_one_line(code: int, err: str, args: list[str]) -> None:
    """Exit 0, or exit 2 with one ``error:`` line (notes and warnings aside) and no traceback."""
    assert "Traceback" not in err, err
    if code != 0:
        lines = [line for line in err.splitlines() if line.strip() and not line.startswith(("note:", "warning:"))]
        assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), (args, code, err)


@pytest.fixture(scope="module")
def bandit_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = tmp_path_factory.mktemp("bandit") / "run"
    pglab.train(
        agent="reinforce", env="pglab/CategoricalBandit-v0", total_steps=1, run_dir=str(run_dir),
        wandb_mode="disabled", progress=False,
    )  # fmt: skip
    return run_dir


# The numbers of `pglab grads` and `pglab eval`, drawn over the small budgets the command is given first.
OTHER_NUMBERS = {
    "grads": {
        flag: INTS.map(str) for flag in ("--seed", "--samples", "--batch-episodes", "--warmup", "--reference-samples")
    },
    "eval": {"--seed": INTS.map(str), "--episodes": st.integers(-2, 8).map(str)},
}


@st.composite
def other_arguments(draw: st.DrawFn) -> tuple[str, str, str]:
    command = draw(st.sampled_from(sorted(OTHER_NUMBERS)))
    flag = draw(st.sampled_from(sorted(OTHER_NUMBERS[command])))
    return command, flag, draw(OTHER_NUMBERS[command][flag])


@seed(11)
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(drawn=other_arguments())
def test_any_number_of_grads_or_eval_runs_or_fails_in_one_line(bandit_run: Path, tmp_path: Path, run_cli, drawn):
    command, flag, value = drawn
    if command == "grads":
        args = [
            "grads",
            "--env",
            "pglab/CategoricalBandit-v0",
            "--agents",
            "reinforce",
            "--samples",
            "4",
            "--batch-episodes",
            "2",
            "--warmup",
            "0",
            "--reference-samples",
            "4",
            "--out",
            str(tmp_path / "g"),
        ]
    else:
        args = ["eval", str(bandit_run), "--episodes", "2", "--json", str(tmp_path / "eval.json")]  # fmt: skip
    code, err = run_within_alarm(run_cli, [*args, flag, value])
    assert_runs_or_one_line(code, err, [command, flag, value])
