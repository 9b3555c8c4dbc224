"""``pglab report DIR --html``: one self-contained, interactive report.html that opens offline.

The page holds plotly.js itself (inlined once, no CDN), every figure as JSON, and a few lines of
script that draw them: learning curves with 95% bootstrap bands per agent, the IQM table with its
CIs (and the same intervals as a figure), performance profiles, the ``grads/*`` diagnostics and a
table of every run linking its files. Hovering shows the numbers; clicking an agent in a legend
hides or shows its curve and band together. The numbers are those of report.md: the same runs,
grouped by :func:`pglab.lab.results.group_runs`, the same bands (:func:`pglab.lab.results.curve_bands`,
:func:`pglab.lab.results.profile_bands`).

When every figure is drawn the script sets ``data-rendered`` on ``<body>`` to the number of
figures and ``data-render-ms`` to the milliseconds since navigation started; a failure sets
``data-render-error``. The browser test and benchmarks/html_report.py read them.
"""

from __future__ import annotations

import html
import os
from pathlib import Path
from typing import Any

import numpy as np

from pglab.io.runlog import dumps
from pglab.lab.results import (
    FEW_SEEDS,
    GRADS_LABELS,
    GRADS_PREFIX,
    METHODS,
    RETURN,
    AgentResult,
    Report,
    RunRecord,
    SettingsComparison,
    compare_settings,
    curve_bands,
    fmt,
    grads_metrics,
    positive,
    profile_bands,
    result_table,
)
from pglab.lab.runlist import read_json

# Files of a run directory the runs table links to, in this order, when they exist (glob patterns; *.pt:
# the checkpoint, without importing torch to learn its name).
RUN_FILES = ("config.json", "config.toml", "summary.json", "metrics.jsonl", "*.pt", "eval*.json",
             "events.out.tfevents.*", "videos", "wandb")  # fmt: skip
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")
PLOT_CONFIG = {"responsive": True, "displaylogo": False}

STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em auto; max-width: 1100px; padding: 0 1em; color: #222; }
h1 { font-size: 1.5em; } h2 { border-bottom: 1px solid #ccc; margin-top: 2em; } h3 { font-size: 1.05em; }
p.methods { font-size: 0.9em; color: #444; } nav a { margin-right: 1em; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.5em 0 1em; }
th, td { border: 1px solid #ddd; padding: 3px 7px; text-align: right; } th { background: #f4f4f4; }
td.text, th.text { text-align: left; } td.files a { margin-right: 0.5em; }
.figure { width: 100%; height: 420px; } .note { color: #666; font-size: 0.9em; }
p.notice { background: #fff6e0; border-left: 4px solid #e0a000; padding: 0.4em 0.8em; }
tr.beyond td { background: #fde8e8; font-weight: bold; } details { margin: 0.5em 0 1em; }
"""

SCRIPT = """
(function () {
  const figures = JSON.parse(document.getElementById("pglab-figures").textContent);
  const config = JSON.parse(document.getElementById("pglab-plot-config").textContent);
  const drawn = Object.entries(figures).map(([id, f]) => Plotly.newPlot(id, f.data, f.layout, config));
  Promise.all(drawn).then(function () {
    document.body.dataset.renderMs = String(Math.round(performance.now()));
    document.body.dataset.rendered = String(drawn.length);
  }).catch(function (error) {
    document.body.dataset.renderError = String(error);
    console.error(error);
  });
})();
"""


def _color(index: int, alpha: float | None = None) -> str:
    color = PALETTE[index % len(PALETTE)]
    if alpha is None:
        return color
    r, g, b = (int(color[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


def _values(array: np.ndarray) -> list[float | None]:
    """A JSON-ready list: NaN (a step too few seeds reached) becomes null, which plotly leaves as a gap."""
    return [None if not np.isfinite(v) else round(float(v), 6) for v in array]


def _band_traces(
    x: np.ndarray, band: tuple[np.ndarray, ...], agent: str, color: int, label: str, what: str, axis: str | None = None
) -> list[dict[str, Any]]:
    """The band (low, then high filled down to it) and the mean line of one agent, one legend entry for all three."""
    mean, low, high = band
    xs = _values(x)
    common = {"x": xs, "legendgroup": agent, "type": "scatter", "mode": "lines"}
    if axis is not None:  # a panel of a figure with several: "" is the first, "2" the second...
        common |= {"xaxis": f"x{axis}", "yaxis": f"y{axis}"}
    line = {"width": 0}
    return [
        {**common, "y": _values(low), "line": line, "hoverinfo": "skip", "showlegend": False},
        {
            **common,
            "y": _values(high),
            "line": line,
            "hoverinfo": "skip",
            "showlegend": False,
            "fill": "tonexty",
            "fillcolor": _color(color, 0.2),
        },
        {
            **common,
            "y": _values(mean),
            "name": label,
            "line": {"color": _color(color), "width": 2},
            "hovertemplate": f"{html.escape(agent)}<br>%{{x:,.0f}}<br>{what} %{{y:.4g}}<extra></extra>",
        },
    ]


def _layout(title: str, xtitle: str, ytitle: str, **extra: Any) -> dict[str, Any]:
    return {
        "title": {"text": title, "font": {"size": 15}},
        "xaxis": {"title": {"text": xtitle}, "automargin": True},
        "yaxis": {"title": {"text": ytitle}, "automargin": True},
        "hovermode": "closest",
        "margin": {"t": 50, "r": 20},
        "legend": {"title": {"text": "click to hide or show"}},
        **extra,
    }


def learning_curves(env: str, by_agent: dict[str, list[RunRecord]], colors: dict[str, int]) -> dict[str, Any] | None:
    grid, bands = curve_bands(by_agent, RETURN)
    if not bands:
        return None
    data = [
        trace
        for agent, (band, runs) in bands.items()
        for trace in _band_traces(grid, band, agent, colors[agent], f"{agent} (n={runs})", "return")
    ]
    return {
        "data": data,
        "layout": _layout(f"{env}: mean return over seeds, 95% bootstrap band", "environment steps", "episodic return"),
    }


def profiles(env: str, by_agent: dict[str, list[RunRecord]], colors: dict[str, int]) -> dict[str, Any]:
    thresholds, bands = profile_bands(by_agent)
    data = [
        trace
        for agent, band in bands.items()
        for trace in _band_traces(
            thresholds, band, agent, colors[agent], f"{agent} (n={len(by_agent[agent])})", "fraction above"
        )
    ]
    layout = _layout(
        f"{env}: performance profile, 95% bootstrap band",
        "return threshold (final return: mean of the last 100 episodes)",
        "fraction of runs above the threshold",
    )
    layout["yaxis"]["range"] = [-0.02, 1.02]
    return {"data": data, "layout": layout}


def iqm_intervals(env: str, results: dict[str, AgentResult], colors: dict[str, int]) -> dict[str, Any]:
    """Each group's IQM of the final return as a dot with its 95% CI as a bar, one per row (label -> result)."""
    data = [
        {
            "type": "scatter",
            "mode": "markers",
            "x": [r.final.value],
            "y": [label],
            "name": label,
            "marker": {"color": _color(colors[label]), "size": 10},
            "error_x": {
                "type": "data",
                "symmetric": False,
                "array": [r.final.high - r.final.value],
                "arrayminus": [r.final.value - r.final.low],
                "color": _color(colors[label]),
            },
            "hovertemplate": f"{html.escape(label)}: IQM %{{x:.4g}} [{r.final.low:.4g}, {r.final.high:.4g}], "
            f"{len(r.runs)} runs<extra></extra>",
        }
        for label, r in results.items()
    ]
    layout = _layout(f"{env}: final return, IQM with 95% bootstrap CI", "final return", "", showlegend=False)
    layout["yaxis"] |= {"autorange": "reversed", "type": "category"}
    layout["height"] = max(220, 60 + 40 * len(results))
    return {"data": data, "layout": layout}


def sensitivity(env: str, tuning: dict[str, Any], colors: dict[str, int]) -> dict[str, Any]:
    """A sweep's tuning scores on one env (OUT/tuning.json of ``pglab compare --sweep``): each agent's
    criterion at every sweep point, mean over the tuning seeds with its 95% CI, the chosen point a star."""
    data = []
    for key, rows in tuning["scores"].items():
        row_env, _, agent = key.partition("|")
        if row_env != env:
            continue
        chosen = tuning["chosen"].get(key)
        data.append(
            {
                "type": "scatter",
                "mode": "lines+markers",
                "name": agent,
                "x": [_point_text(row["point"]) for row in rows],
                "y": [row["mean"] for row in rows],
                "error_y": {"type": "data", "symmetric": False, **_intervals(rows), "color": _color(colors[agent])},
                "marker": {
                    "color": _color(colors[agent]),
                    "size": [16 if row["point"] == chosen else 8 for row in rows],
                    "symbol": ["star" if row["point"] == chosen else "circle" for row in rows],
                },
                "line": {"color": _color(colors[agent])},
                "customdata": [len(row["values"]) for row in rows],
                "hovertemplate": f"{html.escape(agent)}<br>%{{x}}<br>%{{y:.4g}} over %{{customdata}} seeds"
                "<extra></extra>",
            }
        )
    layout = _layout(
        f"{env}: sensitivity to the sweep (tuning seeds; star: the chosen point)",
        "sweep point",
        tuning.get("criterion", "criterion"),
    )
    layout["xaxis"]["type"] = "category"
    return {"data": data, "layout": layout}


def _intervals(rows: list[dict[str, Any]]) -> dict[str, list[float | None]]:
    """plotly's asymmetric error bars from tuning.json's (mean, low, high); none where there is no interval."""

    def gap(a: float | None, b: float | None) -> float | None:
        return None if a is None or b is None else a - b

    return {
        "array": [gap(row["high"], row["mean"]) for row in rows],
        "arrayminus": [gap(row["mean"], row["low"]) for row in rows],
    }


def _point_text(point: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in point.items()) or "preset"


def gradient_diagnostics(
    env: str, by_agent: dict[str, list[RunRecord]], colors: dict[str, int]
) -> dict[str, Any] | None:
    """One panel per ``grads/*`` metric, stacked, sharing the step axis; log axes for positive norms and variances."""
    metrics = grads_metrics(by_agent)
    if not metrics:
        return None
    data, layout = [], _layout(f"{env}: gradient diagnostics, mean over seeds, 95% bootstrap band", "", "")
    gap, height = 0.04, 1.0 / len(metrics)
    for i, metric in enumerate(metrics, start=1):
        grid, bands = curve_bands(by_agent, metric)
        name = GRADS_LABELS.get(metric, metric.removeprefix(GRADS_PREFIX))  # plain names with units
        suffix = "" if i == 1 else str(i)
        for agent, (band, runs) in bands.items():
            traces = _band_traces(grid, band, agent, colors[agent], f"{agent} (n={runs})", name, axis=suffix)
            traces[-1]["showlegend"] = i == 1
            data += traces
        top = 1.0 - (i - 1) * height
        log = ("var" in metric or "norm" in metric) and positive(by_agent, metric)
        layout[f"yaxis{suffix}"] = {
            "title": {"text": name},
            "domain": [top - height + gap, top],
            "automargin": True,
            "anchor": f"x{suffix}",
            "type": "log" if log else "linear",
            **({"tickformat": ".2g", "dtick": "D2"} if log else {}),  # ticks at 1, 2, 5 x 10^k, as numbers
        }
        layout[f"xaxis{suffix}"] = {
            "anchor": f"y{suffix}",
            "matches": "x" if i > 1 else None,
            "showticklabels": i == len(metrics),
        }
    layout[f"xaxis{'' if len(metrics) == 1 else len(metrics)}"]["title"] = {"text": "environment steps"}
    layout["height"] = 120 + 220 * len(metrics)
    return {"data": data, "layout": layout}


def _table(
    header: list[str],
    rows: list[list[str]],
    text_columns: set[int],
    raw: set[int] = frozenset(),
    row_classes: list[str] | None = None,
) -> str:
    """An HTML table; cells are escaped except the columns in ``raw`` (already HTML); ``row_classes``: a CSS
    class per row ("" for none)."""

    def cell(tag: str, i: int, value: str) -> str:
        css = ' class="text"' if i in text_columns else (' class="files"' if i in raw else "")
        return f"<{tag}{css}>{value if i in raw else html.escape(value)}</{tag}>"

    def tr(row: list[str], css: str) -> str:
        return (
            (f'<tr class="{css}">' if css else "<tr>") + "".join(cell("td", i, v) for i, v in enumerate(row)) + "</tr>"
        )

    head = "".join(cell("th", i, h) for i, h in enumerate(header))
    body = "\n".join(tr(row, css) for row, css in zip(rows, row_classes or [""] * len(rows), strict=True))
    return f"<table>\n<tr>{head}</tr>\n{body}\n</table>"


def _file_links(run: RunRecord, out: Path) -> str:
    links = []
    for path in (p for pattern in RUN_FILES for p in sorted(run.path.glob(pattern))):
        href = Path(os.path.relpath(path, out)).as_posix()
        label = "tensorboard" if path.name.startswith("events.out.tfevents.") else path.name
        links.append(f'<a href="{html.escape(href)}">{html.escape(label)}</a>')
    return " ".join(links)


def _runs_table(runs: list[RunRecord], out: Path) -> str:
    header = ["env", "agent", "seed", "status", "steps", "final return", "solved at", "wall s", "directory", "files"]
    rows = []
    for run in runs:
        s = run.summary
        rel = Path(os.path.relpath(run.path, out)).as_posix()
        rows.append(
            [
                run.env,
                run.agent,
                str(run.seed),
                run.status,
                fmt(s.get("global_step"), 0),
                fmt(run.final_return),
                fmt(s.get("solved_at_step"), 0),
                fmt(s.get("wall_s")),
                f'<a href="{html.escape(rel)}/">{html.escape(run.path.name)}</a>',
                _file_links(run, out),
            ]
        )
    return _table(header, rows, text_columns={0, 1, 3}, raw={8, 9})


def _settings_details(comparison: SettingsComparison) -> str:
    """The groups' settings side by side, shown open when a field differs beyond the estimator."""
    differing = [key for key, mark, _ in comparison.rows if mark]
    summary = (
        f"Settings: {len(differing)} {'field differs' if len(differing) == 1 else 'fields differ'} between the groups"
    )
    if differing:
        summary += f" ({', '.join(differing)}; beyond the estimator: {', '.join(comparison.beyond) or 'none'})"
    marks = {"": "", "estimator": "≠ (estimator)", "beyond": "≠"}
    table = _table(
        ["field", "differs", *comparison.labels],
        [[key, marks[mark], *cells] for key, mark, cells in comparison.rows],
        text_columns=set(range(len(comparison.labels) + 2)),
        row_classes=[mark for _, mark, _ in comparison.rows],  # "beyond" rows stand out
    )
    opened = " open" if comparison.beyond else ""
    return f"<details{opened}><summary>{html.escape(summary)}</summary>\n{table}\n</details>"


def _notices(report: Report, excluded: list[RunRecord], mixed: dict[str, list[str]]) -> list[str]:
    """What a reader must know before reading any number: report.md's caveats, as paragraphs."""
    notices = []
    if sum(len(r.runs) for r in report.results) == 1:
        notices.append("One run: it has no confidence interval and says nothing about seed variation.")
    few = [f"{r.env} / {r.label}" for r in report.results if r.seeds < FEW_SEEDS]
    if few:
        notices.append(f"⚠ Fewer than {FEW_SEEDS} seeds behind {len(few)} of {len(report.results)} rows "
                       f"({'; '.join(few)}): their statistics are tentative.")  # fmt: skip
    if mixed:
        fields = "; ".join(f"{env}: {', '.join(keys)}" for env, keys in mixed.items())
        notices.append("Mixed folder: runs compared below differ in more than the estimator; the comparison includes "
                       f"these differences (see each environment's settings): {fields}.")  # fmt: skip
    if excluded:
        notices.append(f"{len(excluded)} runs are left out of the statistics (not finished); see the runs table.")
    return [f'<p class="notice">{html.escape(n)}</p>' for n in notices]


def script_json(data: Any) -> str:
    """Strict JSON safe inside a <script> element: no '</' can end it early, and no NaN (which the
    page's JSON.parse would reject, leaving every figure undrawn) -- an undefined number is null."""
    return dumps(data, separators=(",", ":")).replace("</", "<\\/")


def render(report: Report, directory: Path, out: Path) -> str:
    """The whole page as a string."""
    from plotly.offline import get_plotlyjs

    finished = sum(len(runs) for by_agent in report.groups.values() for runs in by_agent.values())
    tuning = read_json(directory / "tuning.json")
    tuned = {key.partition("|")[2] for key in tuning.get("scores", {})}
    agents = sorted({agent for by_agent in report.groups.values() for agent in by_agent} | tuned)
    colors = {agent: i for i, agent in enumerate(agents)}  # one colour per agent (or group) on every figure
    figures: dict[str, dict[str, Any]] = {}
    sections, mixed = [], {}

    def figure(spec: dict[str, Any] | None, key: str) -> str:
        if spec is None:
            return ""
        figures[key] = spec
        height = spec["layout"].get("height")
        style = f' style="height:{height}px"' if height else ""
        return f'<div class="figure" id="{key}"{style}></div>'

    for e, (env, by_agent) in enumerate(report.groups.items()):
        results = {r.label: r for r in report.results if r.env == env}
        comparison = compare_settings(by_agent)
        if comparison.beyond:
            mixed[env] = comparison.beyond
        parts = [f'<h2 id="env-{e}">{html.escape(env)}</h2>']
        parts.append(figure(learning_curves(env, by_agent, colors), f"fig-{e}-curves"))
        parts += [
            "<h3>Final return</h3>",
            _table(*result_table(list(results.values())), text_columns={0}),
            _settings_details(comparison),
            figure(iqm_intervals(env, results, colors), f"fig-{e}-iqm"),
        ]
        parts.append(figure(profiles(env, by_agent, colors), f"fig-{e}-profile"))
        grads = figure(gradient_diagnostics(env, by_agent, colors), f"fig-{e}-grads")
        if grads:
            parts += ["<h3>Gradient diagnostics</h3>", grads]
        sections.append("\n".join(p for p in parts if p))
    if tuning.get("scores"):
        envs = sorted({key.partition("|")[0] for key in tuning["scores"]})
        parts = ['<h2 id="sweep">Sweep sensitivity</h2>', f'<p class="note">{html.escape(_tuning_text(tuning))}</p>']
        parts += [figure(sensitivity(env, tuning, colors), f"fig-sweep-{e}") for e, env in enumerate(envs)]
        sections.append("\n".join(parts))
    sweep_link = ' <a href="#sweep">sweep</a>' if tuning.get("scores") else ""
    nav = " ".join(f'<a href="#env-{e}">{html.escape(env)}</a>' for e, env in enumerate(report.groups))
    excluded = [r for r in report.runs if not (r.finished and r.final_return is not None)]
    notices = _notices(report, excluded, mixed)
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            f"<title>pglab report: {html.escape(str(directory))}</title>",
            f"<style>{STYLE}</style>",
            f"<script>{get_plotlyjs()}</script>",
            "</head><body>",
            f"<h1>pglab report: {html.escape(str(directory))}</h1>",
            f"<p>{finished} finished runs of {len(report.runs)}.</p>",
            *notices,
            f'<p class="methods">{html.escape(METHODS)}</p>',
            f'<nav>{nav}{sweep_link} <a href="#runs">runs</a></nav>',
            *sections,
            '<h2 id="runs">Runs</h2>',
            _runs_table(report.runs, out),
            f'<script type="application/json" id="pglab-figures">{script_json(figures)}</script>',
            f'<script type="application/json" id="pglab-plot-config">{script_json(PLOT_CONFIG)}</script>',
            f"<script>{SCRIPT}</script>",
            "</body></html>",
        ]
    )


def _tuning_text(tuning: dict[str, Any]) -> str:
    return (
        f"Every agent ran every point of the sweep on the tuning seeds {', '.join(map(str, tuning['tune_seeds']))} "
        f"({tuning['total_steps']:,} steps per run); the point with the best mean criterion was run on the evaluation "
        f"seeds, whose runs the sections above report. Criterion: {tuning['criterion_text']}. Points: mean over the "
        "tuning seeds with its 95% Student-t interval (none with one seed)."
    )


def write_html(report: Report, directory: Path, out: Path) -> Path:
    """Write ``out``/report.html; returns its path."""
    path = out / "report.html"
    path.write_text(render(report, directory, out), encoding="utf-8")
    return path
