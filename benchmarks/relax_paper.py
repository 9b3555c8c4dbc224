"""The discrete RL experiment of RELAX (Grathwohl et al., ICLR 2018, Table 2), run with pglab.

Episodes until Cart-pole and Lunar lander are solved, by the A2C-style actor-critic (pglab's
``reinforce-value``: a learned V(s) baseline on Monte-Carlo returns) and by ``relax``. The protocol,
from the paper's appendix E.1 and its public code (wgrathwohl/BackpropThroughTheVoidRL,
baselines/a2c: ``RolloutRunner``, ``RelaxedLinearPolicy``):

* one complete episode per update (``batch_episodes=1``, one environment): a single Monte-Carlo sample;
  discounted returns, gamma 0.99, no bootstrapping (``truncation=terminal``), no advantage
  normalisation, no gradient clipping;
* policy and control variate (value network for A2C): two hidden layers of 10 units, ReLU;
* entropy bonus 0.01; the control variate takes one variance step per update, after the policy's
  estimate (RELAX's temperature learned from 1); A2C's value network one regression step;
* method ``relax``: all of RELAX's control variate descends the variance (the paper's discrete-task
  code); ``relax-v``: its state term v(s) takes a regression step on the returns instead (c = V + c-hat,
  the paper's continuous-task code), the rest the variance step;
* the learning rate from the grid {0.01, 0.003, 0.001}, the critic's at a scale of it (the paper's
  second grid dimension); the method's reported setting is the one with the fewest mean episodes;
* solved: the mean return of the last 100 episodes >= 195 (Cart-pole) or 200 (Lunar lander);
  budgets 250,000 frames (Cart-pole) and 5,000,000 (Lunar lander); 5 seeds.

``python benchmarks/relax_paper.py`` runs that full protocol (hours on one core for Cart-pole, days for
Lunar lander); ``--envs``, ``--seeds``, ``--lrs``, ``--critic-lr-scales`` and ``--budget-scale`` (a
fraction of the frame budgets) shrink it. Every run is a fresh process (``--parallel`` at a time), its
result cached under ``benchmarks/results/<name>_runs/``, so an interrupted benchmark continues where it
stopped (the cache does not know the code's version: clear it after changing an agent). Lunar lander
needs ``pip install 'pglab[box2d]'``.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import RESULTS, machine, pglab_run, run_worker, save

from pglab.lab.experiments import parse_seeds

# The paper's Table 2: mean ± std episodes to solve over 5 seeds.
PAPER = {
    "CartPole": {"a2c": (1152, 90), "relax": (472, 114)},
    "LunarLander": {"a2c": (162374, 17241), "relax": (68712, 20668)},
}
TASKS = {  # env id -> (the paper's task, target return, frame budget, buffer length)
    "CartPole-v0": ("CartPole", 195.0, 250_000, 200),
    "LunarLander-v3": ("LunarLander", 200.0, 5_000_000, 1000),
}
METHODS = {"a2c": "reinforce-value", "relax": "relax", "relax-v": "relax"}
SHARED = {
    "num_envs": "1",
    "batch_episodes": "1",
    "gamma": "0.99",
    "truncation": "terminal",
    "normalize_advantages": "off",
    "max_grad_norm": "0",
    "ent_coef": "0.01",
    "hidden_sizes": "10,10",
    "critic_hidden_sizes": "10,10",
    "activation": "relu",
    "critic_epochs": "1",
    "critic_update": "after",
}
OWN = {
    "a2c": {"gae_lambda": "1.0"},
    # the paper's code for its discrete tasks: all of c descends the estimate's variance
    "relax": {"tau": "1.0", "learn_tau": "true", "state_term": "variance"},
    # c = V + c-hat with V regressed on the returns (the paper's code for its continuous tasks)
    "relax-v": {"tau": "1.0", "learn_tau": "true", "state_term": "regression"},
}
PAPER_ROW = {"a2c": "a2c", "relax": "relax", "relax-v": "relax"}  # the paper's row each method is compared with


def settings(method: str, env: str, lr: float, scale: float) -> dict[str, str]:
    """The preset fields of one run (strings, as ``--set`` takes them)."""
    return {**SHARED, **OWN[method], "num_steps": str(TASKS[env][3]), "lr": str(lr), "critic_lr": str(lr * scale)}


def summarise(runs: list[dict]) -> list[dict]:
    """Per (env, method): the grid point with the fewest mean episodes, as the paper selects it."""
    rows = []
    for env in dict.fromkeys(r["env"] for r in runs):
        for method in METHODS:
            points: dict[tuple[float, float], list[dict]] = {}
            for r in runs:
                if r["env"] == env and r["method"] == method:
                    points.setdefault((r["lr"], r["critic_lr_scale"]), []).append(r)
            if not points:
                continue
            scored = []
            for (lr, scale), group in points.items():
                solved = [r["episodes_to_solve"] for r in group if r["episodes_to_solve"] is not None]
                # an unsolved seed counts at the episodes it ran: a lower bound, which favours no one
                censored = [r["episodes_to_solve"] or r["episodes"] for r in group]
                scored.append((statistics.fmean(censored), lr, scale, group, solved, censored))
            mean, lr, scale, group, solved, censored = min(scored, key=lambda s: s[0])
            rows.append(
                {
                    "env": env,
                    "method": method,
                    "lr": lr,
                    "critic_lr_scale": scale,
                    "seeds": len(group),
                    "solved": len(solved),
                    "episodes": censored,
                    "frames": [r["steps"] for r in group],
                    "final_return": [r["return_mean_last100"] for r in group],
                    "mean": mean,
                    "std": statistics.stdev(censored) if len(censored) > 1 else 0.0,
                    "grid": {f"{lr_}/{s_}": statistics.fmean(c) for _, lr_, s_, _, _, c in scored},
                }
            )
    return rows


def ratio_interval(a2c: list[float], relax: list[float], samples: int = 10_000, seed: int = 0) -> tuple[float, ...]:
    """mean(a2c) / mean(relax) and its 95% percentile-bootstrap interval (seeds resampled per method)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    a, r = np.asarray(a2c, float), np.asarray(relax, float)
    ratios = rng.choice(a, (samples, len(a))).mean(1) / rng.choice(r, (samples, len(r))).mean(1)
    low, high = np.quantile(ratios, [0.025, 0.975])
    return float(a.mean() / r.mean()), float(low), float(high)


def table(rows: list[dict]) -> str:
    lines = [
        "| task | method | pglab: episodes to solve (mean ± std) | solved | frames (mean) | last-100 return at the end "
        "| lr / critic scale | paper (5 seeds) |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        task = TASKS[row["env"]][0]
        paper_mean, paper_std = PAPER[task][PAPER_ROW[row["method"]]]
        lines.append(
            f"| {row['env']} | {row['method']} | {row['mean']:.0f} ± {row['std']:.0f} | {row['solved']}/{row['seeds']} "
            f"| {statistics.fmean(row['frames']):.0f} | {', '.join(f'{r:.0f}' for r in row['final_return'])} "
            f"| {row['lr']:g} / {row['critic_lr_scale']:g} | {paper_mean} ± {paper_std} |"
        )
    lines.append("")
    for env in dict.fromkeys(r["env"] for r in rows):
        mine = {r["method"]: r for r in rows if r["env"] == env}
        paper = PAPER[TASKS[env][0]]
        for method in (m for m in mine if m != "a2c" and "a2c" in mine):
            ratio, low, high = ratio_interval(mine["a2c"]["episodes"], mine[method]["episodes"])
            lines.append(
                f"{env}: a2c / {method} episodes = {ratio:.2f} (95% bootstrap interval {low:.2f}-{high:.2f}); "
                f"the paper's A2C / RELAX ratio {paper['a2c'][0] / paper['relax'][0]:.2f}."
            )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--envs", default="CartPole-v0,LunarLander-v3", help=f"comma-separated, of {', '.join(TASKS)}")
    parser.add_argument("--methods", default="a2c,relax", help=f"comma-separated, of {', '.join(METHODS)}")
    parser.add_argument("--seeds", default="0-4", help="the paper: 5 seeds")
    parser.add_argument("--lrs", default="0.01,0.003,0.001", help="the paper's grid")
    parser.add_argument("--critic-lr-scales", default="1", help="critic lr = lr * scale (the paper's second grid)")
    parser.add_argument("--budget-scale", type=float, default=1.0, help="fraction of the paper's frame budget")
    parser.add_argument("--parallel", type=int, default=1)
    parser.add_argument("--name", default="relax_paper")
    parser.add_argument("--worker", nargs=6, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        method, env, seed, budget, target, sets = args.worker
        result = pglab_run(METHODS[method], env, int(seed), int(budget), float(target), json.loads(sets))
        print(json.dumps(result))
        return
    envs = [e for e in args.envs.split(",") if e]
    unknown = [e for e in envs if e not in TASKS] + [m for m in args.methods.split(",") if m not in METHODS]
    if unknown:
        parser.error(f"unknown env or method: {', '.join(unknown)}")
    cache = RESULTS / f"{args.name}_runs"
    cache.mkdir(parents=True, exist_ok=True)
    jobs = [
        (env, method, float(lr), float(scale), seed)
        for env in envs
        for method in args.methods.split(",")
        for lr in args.lrs.split(",")
        for scale in args.critic_lr_scales.split(",")
        for seed in parse_seeds(args.seeds)
    ]

    def one(job: tuple[str, str, float, float, int]) -> dict:
        env, method, lr, scale, seed = job
        path = cache / f"{env}__{method}__lr{lr:g}__x{scale:g}__{seed}.json"
        if path.exists():
            return json.loads(path.read_text())
        _, target, budget, _ = TASKS[env]
        sets = settings(method, env, lr, scale)
        frames = math.ceil(budget * args.budget_scale)
        result = run_worker(
            Path(__file__), method, env, str(seed), str(frames), str(target), json.dumps(sets), timeout=10**6
        )
        result.update(method=method, lr=lr, critic_lr_scale=scale, budget_frames=frames, settings=sets)
        result["episodes_to_solve"] = result["episodes"] if result["solved_at_step"] is not None else None
        path.write_text(json.dumps(result, indent=2) + "\n")
        print(f"{env} {method} lr {lr:g} x{scale:g} seed {seed}: {result['episodes_to_solve']} episodes "
              f"({result['steps']} frames, {result['wall_s']:.0f} s)", flush=True)  # fmt: skip
        return result

    with ThreadPoolExecutor(args.parallel) as pool:
        runs = list(pool.map(one, jobs))
    rows = summarise(runs)
    header = (
        f"RELAX paper, Table 2 protocol ({', '.join(envs)}; seeds {args.seeds}; lr grid {args.lrs}; critic scales "
        f"{args.critic_lr_scales}; {args.budget_scale:g} x the paper's frame budget). Machine: {machine()}, "
        f"{args.parallel} run(s) at a time.\n\n"
    )
    save(args.name, {"machine": machine(), "args": vars(args), "rows": rows, "runs": runs}, header + table(rows))


if __name__ == "__main__":
    main()
