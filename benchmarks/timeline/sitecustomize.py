"""A timeline of one ``pglab compare`` for ``benchmarks/grid_scaling.py --timeline`` (never imported by pglab).

Python imports ``sitecustomize`` at start in every process whose path holds this folder: the grid's own
process, its fork server and (forked from that) every worker. With ``PGLAB_TIMELINE=FILE`` set, each of
them appends one JSON line per event to FILE (one ``os.write`` on an O_APPEND file: lines never mix):
the process's start, the end of a few imports (torch, the training code, the fork server's preloads),
and the enter/exit of the functions that mark a grid's phases, wrapped as their modules are imported.
Nothing else changes: without the variable this file does nothing.
"""

from __future__ import annotations

import functools
import importlib.abc
import importlib.machinery
import json
import os
import sys
import time

_PATH = os.environ.get("PGLAB_TIMELINE")
# modules whose import's end is an event; the fork server's preloads among them
IMPORTS = frozenset(
    [
        "torch",
        "pglab.cli",
        "pglab.core.train",
        "pglab.lab.preload",
        "torch._dynamo",
        "torch.utils.tensorboard",
        "tensorboard",
        "wandb",
    ]
)
# module -> functions (or Class.method) whose enter and exit are events; "run" names the run when known
WRAP = {
    "pglab.lab.experiments": ["run_grid", "_run_planned", "plan", "probe_step_seconds", "StatusFile.record"],
    "pglab.lab.engines": ["warm_up", "run_local", "_init_local_worker", "execute"],
    "pglab.core.train": ["build_run", "run_loop", "_close"],
    "pglab.io.runlog": ["RunLog.__init__", "RunLog.close"],
}


def emit(event: str, **fields: object) -> None:
    line = json.dumps({"t": time.time(), "pid": os.getpid(), "ppid": os.getppid(), "event": event, **fields})
    fd = os.open(_PATH, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


def _run_of(args: tuple, kwargs: dict) -> str | None:
    """The run a call is about: a RunTask's or a Run's directory name, or an Outcome's run."""
    for value in (*args, *kwargs.values()):
        for attribute in ("run_dir", "run"):
            found = getattr(value, attribute, None)
            if isinstance(found, (str, os.PathLike)):
                return os.path.basename(str(found))
        config = getattr(value, "config", None)
        if config is not None and getattr(config, "run_dir", None):
            return os.path.basename(str(config.run_dir))
    return None


def _wrapped(name: str, function):
    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        run = _run_of(args, kwargs)
        emit(f"{name} >", run=run)
        try:
            result = function(*args, **kwargs)
            if hasattr(result, "__next__"):  # a generator: its body runs as it is iterated, not here
                result = _iterated(name, result, run)
            return result
        finally:
            emit(f"{name} <", run=run)

    return wrapper


def _iterated(name: str, generator, run):
    emit(f"{name} first next", run=run)
    yield from generator
    emit(f"{name} exhausted", run=run)


def _patch(module) -> None:
    for qualified in WRAP.get(module.__name__, []):
        owner, _, attribute = qualified.rpartition(".")
        holder = getattr(module, owner) if owner else module
        setattr(holder, attribute, _wrapped(qualified, getattr(holder, attribute)))


class _Loader(importlib.abc.Loader):
    def __init__(self, loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        self.loader.exec_module(module)
        if module.__name__ in IMPORTS:
            emit(f"imported {module.__name__}")
        if module.__name__ in WRAP:
            _patch(module)


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path, target=None):
        if fullname not in IMPORTS and fullname not in WRAP:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _Loader(spec.loader)
        return spec


if _PATH:
    import atexit

    emit("python start", argv=" ".join(sys.argv)[:120])
    atexit.register(emit, "python exit")  # registered first, so run last (a forked worker ends without it)
    sys.meta_path.insert(0, _Finder())
