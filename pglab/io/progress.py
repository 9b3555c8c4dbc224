"""Progress output for runs and grids: a bar on a terminal, a plain line every few seconds elsewhere.

On a terminal, tqdm draws the bar with pglab's own numbers (the step rate pglab measures, not a second
rate of tqdm's beside it). When stderr is a file or a pipe (CI logs, ``nohup``, a grid's workers), a
bar would write hundreds of carriage returns; instead one plain line is written every
``interval_s`` seconds and at the end.
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

from tqdm import tqdm

BAR_FORMAT = "{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}{postfix}]"  # tqdm's, less its rate


class Progress:
    """``update(n, key=value...)`` after each unit of work; ``write(line)`` for messages; ``close()``."""

    def __init__(
        self,
        total: int,
        initial: int = 0,
        unit: str = "step",
        enabled: bool = True,
        stream: TextIO | None = None,
        interval_s: float = 5.0,
    ) -> None:
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.total, self.count, self.unit = total, initial, unit
        self.interval_s = interval_s
        self.postfix: dict[str, Any] = {}
        self.last_line = time.monotonic()
        self.bar = None
        if enabled and self.stream.isatty():
            self.bar = tqdm(
                total=total, initial=initial, unit=unit, file=self.stream, dynamic_ncols=True, bar_format=BAR_FORMAT
            )

    def update(self, n: int, **postfix: Any) -> None:
        self.count += n
        self.postfix = postfix
        if self.bar is not None:
            self.bar.set_postfix(postfix, refresh=False)
            self.bar.update(n)
        elif self.enabled and time.monotonic() - self.last_line >= self.interval_s:
            self._line()

    def write(self, line: str) -> None:
        if self.bar is not None:
            self.bar.write(line, file=self.stream)
        else:
            print(line, file=self.stream, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        elif self.enabled:
            self._line()

    def _line(self) -> None:
        share = f" ({100 * self.count / self.total:.0f}%)" if self.total else ""
        details = "".join(f" {key}={value}" for key, value in self.postfix.items())
        print(f"{self.count:,}/{self.total:,} {self.unit}s{share}{details}", file=self.stream, flush=True)
        self.last_line = time.monotonic()
