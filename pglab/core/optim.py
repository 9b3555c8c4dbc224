"""Adam as ``torch.optim.Adam(foreach=True)`` steps it, without torch.optim.Optimizer and its import of torch._dynamo.

Every method of ``torch.optim.Optimizer`` (building one, ``zero_grad``, ``step``, ``state_dict``) first
imports ``torch._dynamo``, torch.compile's machinery, to mark itself as not to be compiled: 0.8 s on a
quiet 2-core machine, as long as importing torch itself, paid by every process that trains (each
``pglab train``, each grid's fork server) before its first update. pglab compiles nothing. :class:`Adam`
calls the function ``torch.optim.Adam.step`` calls (``torch.optim.adam.adam``, the multi-tensor path) on
the same state, created the same way, so its steps are torch's to the bit; its ``state_dict`` has
torch's layout, so a checkpoint written by either loads into the other
(tests/test_speed_equivalence.py checks both).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

import torch
from torch import nn
from torch.optim.adam import adam

# torch.optim.Adam's defaults for what pglab does not set, in its param_groups' order (state_dict equality)
_FIXED = {"weight_decay": 0, "amsgrad": False, "maximize": False, "foreach": True, "capturable": False,
          "differentiable": False, "fused": None, "decoupled_weight_decay": False}  # fmt: skip


class Adam:
    """One parameter group of Adam (betas 0.9, 0.999; no weight decay), stepped with torch's foreach code."""

    def __init__(self, parameters: Iterable[nn.Parameter], lr: float, eps: float) -> None:
        self.param_groups = [{"lr": lr, "betas": (0.9, 0.999), "eps": eps, **_FIXED, "params": list(parameters)}]
        self.state: dict[torch.Tensor, dict[str, torch.Tensor]] = {}

    def zero_grad(self, set_to_none: Literal[True] = True) -> None:
        """Drop every gradient (torch's default; pglab never zeroes them in place)."""
        for p in self.param_groups[0]["params"]:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        """The parameters that have a gradient take one Adam step (torch.optim.Adam.step, foreach, as is)."""
        group = self.param_groups[0]
        params = [p for p in group["params"] if p.grad is not None]
        for p in params:
            if p not in self.state:  # created lazily, as torch does: on the parameter's device at its first step
                self.state[p] = {
                    "step": torch.tensor(0.0, dtype=_scalar_dtype()),  # on the CPU, as torch keeps it
                    "exp_avg": torch.zeros_like(p, memory_format=torch.preserve_format),
                    "exp_avg_sq": torch.zeros_like(p, memory_format=torch.preserve_format),
                }
        states = [self.state[p] for p in params]
        beta1, beta2 = group["betas"]
        adam(
            params,
            [p.grad for p in params],
            [s["exp_avg"] for s in states],
            [s["exp_avg_sq"] for s in states],
            [],
            [s["step"] for s in states],
            foreach=True,
            has_complex=any(torch.is_complex(p) for p in params),
            amsgrad=False,
            beta1=beta1,
            beta2=beta2,
            lr=group["lr"],
            weight_decay=0,
            eps=group["eps"],
            maximize=False,
        )

    def state_dict(self) -> dict[str, Any]:
        """torch.optim.Optimizer.state_dict's layout: state by parameter index, the group's settings.
        The tensors are the optimiser's own, not copies (as torch's)."""
        group = self.param_groups[0]
        index = {id(p): i for i, p in enumerate(group["params"])}
        settings = {k: v for k, v in group.items() if k != "params"}
        return {
            "state": {index[id(p)]: state for p, state in self.state.items()},
            "param_groups": [{**settings, "params": list(index.values())}],
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """A state_dict of this class or of torch.optim.Adam (a checkpoint's): each tensor moved to its
        parameter's device and dtype (the step count stays a CPU scalar), the saved settings taken."""
        (saved,) = state_dict["param_groups"]
        params = self.param_groups[0]["params"]
        if len(saved["params"]) != len(params):
            raise ValueError("loaded state dict contains a parameter group that doesn't match the size of optimizer's")
        by_index = dict(zip(saved["params"], params, strict=True))
        self.state = {}
        for i, state in state_dict["state"].items():
            p = by_index[i]
            self.state[p] = {key: _placed(key, value, p) for key, value in state.items()}
        self.param_groups = [{**{k: v for k, v in saved.items() if k != "params"}, "params": params}]


def _placed(key: str, value: Any, param: torch.Tensor) -> torch.Tensor:
    if key == "step":
        return value if torch.is_tensor(value) else torch.tensor(float(value), dtype=_scalar_dtype())
    return value.to(dtype=param.dtype, device=param.device) if param.is_floating_point() else value.to(param.device)


def _scalar_dtype() -> torch.dtype:
    """The dtype torch gives Adam's step count (torch.optim.optimizer._get_scalar_dtype)."""
    return torch.float64 if torch.get_default_dtype() == torch.float64 else torch.float32
