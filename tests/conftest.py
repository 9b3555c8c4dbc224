"""Fixtures shared by the tests."""

from __future__ import annotations

import signal

import pytest

from pglab.cli import main

# Several tests press Ctrl-C on a pglab subprocess. A test session started as a background job of a
# non-interactive shell (`cmd &`) inherits SIGINT *ignored*, and so would every pglab it starts: it
# would rightly ignore the Ctrl-C. A Python handler here is reset to the default in each child at exec.
signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture
def run_cli(capsys: pytest.CaptureFixture[str]):
    """Run ``pglab ARGS`` in-process; returns (exit code, stdout, stderr)."""

    def invoke(*args: str) -> tuple[int, str, str]:
        try:
            main(list(args))
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
        out, err = capsys.readouterr()
        return code, out, err

    return invoke
