"""Progress output: one rate on a terminal, plain lines (no carriage returns) in a log file."""

from __future__ import annotations

import io

from pglab.io.progress import Progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_log_file_gets_plain_lines_at_the_interval_and_at_the_end():
    stream = io.StringIO()
    progress = Progress(total=300, unit="step", stream=stream, interval_s=3600)
    for _ in range(3):
        progress.update(100, ret100="9.5", sps="1,000")
    assert stream.getvalue() == ""  # the interval has not passed: nothing yet
    progress.close()
    assert stream.getvalue() == "300/300 steps (100%) ret100=9.5 sps=1,000\n"

    stream = io.StringIO()
    progress = Progress(total=200, initial=100, unit="run", stream=stream, interval_s=0)
    progress.update(50, done=1)
    progress.write("a message")
    assert stream.getvalue().splitlines() == ["150/200 runs (75%) done=1", "a message"]
    assert "\r" not in stream.getvalue()


def test_a_terminal_gets_a_bar_with_pglabs_rate_only():
    stream = Terminal()
    progress = Progress(total=1000, unit="step", stream=stream)
    progress.update(500, sps="12,345")
    progress.close()
    drawn = stream.getvalue()
    assert "\r" in drawn and "500/1000" in drawn and "sps=12,345" in drawn
    assert "step/s" not in drawn and "s/step" not in drawn  # no second rate of tqdm's


def test_disabled_progress_writes_nothing_but_messages():
    stream = io.StringIO()
    progress = Progress(total=10, stream=stream, enabled=False, interval_s=0)
    progress.update(10, sps="1")
    progress.close()
    assert stream.getvalue() == ""
