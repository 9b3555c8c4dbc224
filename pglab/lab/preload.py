"""What every local grid worker needs, imported once by the local engine's fork server, which then forks them all.

:func:`pglab.lab.engines._process_context` names this module as the fork server's one preload; nothing
else imports it. Its imports are each worker's start-up cost, paid once per grid instead of once per worker:

* ``pglab.core.train``: torch and the training code (seconds);
* ``torch.utils.tensorboard``: a run's TensorBoard writer (on by default) imports it (0.1-0.2 s);
* pglab's own agents (every module of ``pglab.agents``) and environments (``pglab.envs``): most of
  the 40-50 ms a worker's first run spent building, against 2-4 ms for every later one. Third-party
  plug-ins are not imported here: code that starts a thread at import would make every later fork
  unsafe; each worker loads them itself, as before (pglab.core.plugins, pglab.core.environment).

Not ``torch._dynamo`` (0.8 s, as long as torch): pglab's agents step their own Adam
(:mod:`pglab.core.optim`) and never import it; a plug-in agent that builds a ``torch.optim`` optimiser
imports it in each worker, at its first run, in parallel with the other workers.

Then :func:`gc.freeze` moves every object these imports made into the garbage collector's permanent
generation, as Python's documentation advises a process that forks without exec: the workers' collections
no longer walk torch's millions of long-lived objects (nor write to their pages, which the fork shares),
and the fork server's own exit, when the grid ends, skips collecting them: that collection was 0.4-1.3 s
of every grid's end on a 2-core machine (``benchmarks/grid_scaling.py --timeline``). Freezing frees
nothing and changes no number: objects stay where they are, only the collector stops visiting them.

Last, the fork server's exit skips the interpreter's teardown of these modules (0.05 instead of 0.3-0.45 s
on the loaded 2-core machine): it ends when the grid's process has exited, and whatever reads the command's
output to its end (a pipe, CI, a benchmark) waits for it. It has nothing to save: it writes no file, its
workers are processes of their own, and its output streams are flushed first. Imported anywhere but in the
fork server (a test, a script), this module leaves the importer's exit alone.
"""

from __future__ import annotations

import atexit
import gc
import importlib
import os
import pkgutil
import sys
from multiprocessing import forkserver

import torch.utils.tensorboard  # noqa: F401

import pglab.agents
import pglab.core.train
import pglab.envs

for module in pkgutil.iter_modules(pglab.agents.__path__, "pglab.agents."):
    importlib.import_module(module.name)

gc.freeze()


def _in_fork_server() -> bool:
    """Whether this import runs inside multiprocessing's fork server (its main function is on the stack)."""
    frame = sys._getframe()
    while frame is not None and frame.f_code is not forkserver.main.__code__:
        frame = frame.f_back
    return frame is not None


def _exit_at_once() -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


EXITS_AT_ONCE = _in_fork_server()
if EXITS_AT_ONCE:
    atexit.register(_exit_at_once)  # registered last, so called first: the teardown's other handlers are torch's
