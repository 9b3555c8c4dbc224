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
"""

from __future__ import annotations

import gc
import importlib
import pkgutil

import torch.utils.tensorboard  # noqa: F401

import pglab.agents
import pglab.core.train
import pglab.envs

for module in pkgutil.iter_modules(pglab.agents.__path__, "pglab.agents."):
    importlib.import_module(module.name)

gc.freeze()
