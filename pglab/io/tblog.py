"""TensorBoard scalars beside metrics.jsonl, so that ``tensorboard --logdir runs`` is a live dashboard.

Every metrics row becomes one TensorBoard event at its ``global_step`` holding each of the row's
numbers under its own name (CleanRL's convention: ``charts/episodic_return``, ``losses/...``), in an
``events.out.tfevents.*`` file in the run directory itself, as CleanRL's ``SummaryWriter(f"runs/{run_name}")``
does. One event per row rather than one ``add_scalar`` call per number keeps the cost per row at tens
of microseconds (about a sixth of ten ``add_scalar`` calls; benchmarks/tensorboard_overhead.py).

A resumed run drops the metrics rows past its checkpoint and logs those steps again; its new event
file starts with TensorBoard's purge marker at the first step it will log, so TensorBoard (and
``EventAccumulator``) forget the old file's events from that step on, exactly as metrics.jsonl does.

TensorBoard never stops training: if the writer fails, one warning line is printed and the run goes
on with metrics.jsonl (the record of truth) alone.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

FLUSH_SECS = 10  # how stale the live dashboard may be; the writer thread flushes this often


def scalars(row: dict[str, Any]) -> dict[str, float]:
    """The numbers of a metrics row TensorBoard plots: every int or float but ``global_step`` (bools are not)."""
    return {
        key: float(value)
        for key, value in row.items()
        if key != "global_step" and isinstance(value, (int, float)) and not isinstance(value, bool)
    }


class TensorBoardLog:
    """An event file in ``run_dir``; ``purge_from`` is the first step of a resumed run (None for a new run)."""

    def __init__(self, run_dir: Path, purge_from: int | None = None):
        from tensorboard.compat.proto.summary_pb2 import Summary
        from torch.utils.tensorboard import SummaryWriter

        self._summary = Summary
        self._writer: Any = SummaryWriter(str(run_dir), purge_step=purge_from, flush_secs=FLUSH_SECS)

    def log(self, row: dict[str, Any], walltime: float) -> None:
        values = [self._summary.Value(tag=k, simple_value=v) for k, v in scalars(row).items() if not math.isnan(v)]
        self._writer.file_writer.add_summary(self._summary(value=values), row["global_step"], walltime)

    def close(self) -> None:
        self._writer.close()
