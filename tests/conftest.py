"""Fixtures shared by the tests."""

from __future__ import annotations

import pytest

from pglab.cli import main


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
