"""The command line's help and `pglab list` never import torch or wandb (they start in a blink).

Checked in a fresh interpreter, where sys.modules tells what the commands imported. The start-up
time itself is measured by benchmarks/cli_startup.py, not here (a timed test fails on a busy machine).
"""

from __future__ import annotations

import json
import subprocess
import sys

from pglab.core.policy import ACTIVATIONS
from pglab.core.preset import ACTIVATION_NAMES

HEAVY = ("torch", "wandb", "matplotlib", "scipy", "ray")

PROBE = """
import contextlib, io, json, sys
from pglab.cli import cli, main
commands = [["--help"], ["list"], ["list", "--agent", "gumbel-rao"], ["list", "--agent", "relax"]]
commands += [[name, "--help"] for name in cli.commands]
codes = {}
for args in commands:
    with contextlib.redirect_stdout(io.StringIO()) as out:
        try:
            main(args)
            codes[" ".join(args)] = 0
        except SystemExit as exc:
            codes[" ".join(args)] = exc.code or 0
    assert out.getvalue(), args
print(json.dumps({"codes": codes, "heavy": sorted(m for m in %r if m in sys.modules)}))
"""


def test_help_and_list_import_neither_torch_nor_wandb() -> None:
    done = subprocess.run([sys.executable, "-c", PROBE % (HEAVY,)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.splitlines()[-1])
    assert set(result["codes"].values()) == {0}
    assert {"train --help", "compare --help", "list --agent relax"} <= set(result["codes"])
    assert result["heavy"] == []


def test_preset_activation_names_are_the_policy_activations() -> None:
    assert set(ACTIVATION_NAMES) == set(ACTIVATIONS)
