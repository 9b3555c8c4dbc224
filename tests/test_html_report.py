"""`pglab report DIR --html`: report.html opened in headless Chromium, and its numbers against report.md's."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from selenium.webdriver.support.ui import WebDriverWait

from pglab.lab.experiments import GridSpec
from pglab.lab.report import build_report
from pglab.lab.results import FEW_SEEDS, RETURN
from pglab.lab.tuning import PointScore, SweepSpec, write_tuning
from tests.browser import chromium, load
from tests.helpers import read_json
from tests.test_report import read_csv, write_run

AGENTS = ("alpha", "beta", "gamma")
LRS = ("1e-3", "3e-3")


@pytest.fixture(scope="module")
def grid(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two envs x three agents x four seeds, grads metrics on CartPole only, a target on Acrobot, one failed
    run, and the files a real run leaves beside its metrics (checkpoint, TensorBoard events)."""
    root = tmp_path_factory.mktemp("html") / "grid"
    for env in ("CartPole-v1", "Acrobot-v1"):
        for a, agent in enumerate(AGENTS):
            for seed in range(4):
                final = 10.0 * (a + 1) + seed
                rows = [{"global_step": s, RETURN: final * s / 4000} for s in range(1000, 5000, 1000)]
                if env == "CartPole-v1":
                    rows = [{**row, "grads/policy_grad_norm": 1 + a, "grads/snr": 0.1 * seed} for row in rows]
                target = {"target_return": 25.0, "solved_at_step": 3000} if env == "Acrobot-v1" and final >= 25 else {}
                run = write_run(root / "runs", env, agent, seed, final, rows, **target)
                (run / "checkpoint.pt").write_bytes(b"")
                (run / "eval-greedy.json").write_text("{}")
                (run / "events.out.tfevents.1.host.1.0").write_bytes(b"")
    write_run(root / "runs", "Acrobot-v1", "alpha", 9, 0.0, [{"global_step": 0}], status="failed")
    write_sweep(root)
    return root


def write_sweep(root: Path) -> None:
    """tuning.json as `pglab compare --sweep lr=1e-3,3e-3 --tune-seeds 100-101` writes it (CartPole only)."""
    grid = GridSpec(agents=AGENTS, envs=("CartPole-v1",), seeds=(0, 1, 2, 3), out=root, total_steps=4000)
    spec = SweepSpec(grid=grid, sweep={"lr": ("1e-3", "3e-3")}, tune_seeds=(100, 101), criterion="final")
    scores = {
        f"CartPole-v1|{agent}": [
            PointScore({"lr": lr}, [a + i, a + i + 2.0], a + i + 1.0, a + i, a + i + 2.0) for i, lr in enumerate(LRS)
        ]
        for a, agent in enumerate(AGENTS)
    }
    write_tuning(spec, scores, {f"CartPole-v1|{agent}": {"lr": "3e-3"} for agent in AGENTS})


@pytest.fixture(scope="module")
def report_html(grid: Path) -> Path:
    from pglab.cli import main

    main(["report", str(grid), "--html"])  # returns normally on success
    return grid / "report" / "report.html"


def embedded_figures(page: Path) -> dict[str, dict]:
    text = page.read_text()
    found = re.search(r'<script type="application/json" id="pglab-figures">(.*?)</script>', text, re.S)
    return json.loads(found.group(1).replace("<\\/", "</"))


def test_every_figure_renders_in_chromium_offline(report_html: Path, tmp_path: Path):
    figures = embedded_figures(report_html)
    # per env: curves, IQM intervals, profile; grads and the sweep on CartPole only
    assert sorted(figures) == sorted(
        [f"fig-{e}-{kind}" for e in (0, 1) for kind in ("curves", "iqm", "profile")] + ["fig-1-grads", "fig-sweep-0"]
    )
    with chromium() as driver:
        page = load(driver, report_html)
        shot = tmp_path / "report.png"
        assert driver.save_screenshot(str(shot)) and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert page.render_error is None and page.console_errors == [] and page.external == []
        assert page.rendered == len(page.figures) == len(figures)
        assert all(f["drawn"] and f["traces"] == len(figures[f["id"]]["data"]) for f in page.figures)
        curves = next(f for f in page.figures if f["id"] == "fig-1-curves")
        assert curves["legend"] == [f"{agent} (n=4)" for agent in AGENTS]

        # Clicking an agent in the legend hides its curve and its band together, and a second click shows them.
        # plotly acts on a single click once its double-click delay (300 ms) has passed.
        def visible() -> list:
            script = "return document.getElementById('fig-1-curves').data.map(t => t.visible ?? true);"
            return driver.execute_script(script)

        toggles = driver.find_elements("css selector", "#fig-1-curves g.legend g.traces rect.legendtoggle")
        toggles[1].click()
        WebDriverWait(driver, 5).until(lambda _: visible() != [True] * 9)
        assert visible() == [True] * 3 + ["legendonly"] * 3 + [True] * 3
        toggles[1].click()
        WebDriverWait(driver, 5).until(lambda _: visible() == [True] * 9)


def test_the_html_numbers_are_report_md_s(grid: Path, report_html: Path):
    figures = embedded_figures(report_html)
    aggregates = {(r["env"], r["agent"]): r for r in read_csv(grid / "report" / "aggregates.csv")}
    envs = ["Acrobot-v1", "CartPole-v1"]
    for e, env in enumerate(envs):
        for trace in figures[f"fig-{e}-iqm"]["data"]:
            row = aggregates[env, trace["y"][0]]
            iqm, low, high = (float(row[f"final_return_iqm{k}"]) for k in ("", "_low", "_high"))
            assert trace["x"] == [pytest.approx(iqm)]
            assert trace["error_x"]["arrayminus"] == [pytest.approx(iqm - low)]
            assert trace["error_x"]["array"] == [pytest.approx(high - iqm)]
    sweep = {trace["name"]: trace for trace in figures["fig-sweep-0"]["data"]}
    assert list(sweep) == list(AGENTS)
    for a, agent in enumerate(AGENTS):
        assert sweep[agent]["x"] == ["lr=1e-3", "lr=3e-3"] and sweep[agent]["y"] == [a + 1.0, a + 2.0]
        assert sweep[agent]["error_y"]["array"] == sweep[agent]["error_y"]["arrayminus"] == [1.0, 1.0]
        assert sweep[agent]["marker"]["symbol"] == ["circle", "star"]  # the chosen point
    text = report_html.read_text()
    assert "3/4" in text and "25" in text  # Acrobot: seeds reaching the target
    assert "Acrobot-v1__alpha__9" in text and "failed" in text  # listed, though left out of the statistics


def test_the_runs_table_links_every_run_s_files(grid: Path, report_html: Path):
    text = report_html.read_text()
    hrefs = re.findall(r'<a href="([^"#]+)">', text)
    targets = [(report_html.parent / href).resolve() for href in hrefs]
    assert all(t.exists() for t in targets), [h for h, t in zip(hrefs, targets, strict=True) if not t.exists()]
    run = grid / "runs" / "CartPole-v1__beta__2"
    files = (
        "config.json",
        "summary.json",
        "metrics.jsonl",
        "checkpoint.pt",
        "eval-greedy.json",
        "events.out.tfevents.1.host.1.0",
    )
    for name in files:
        assert (run / name).resolve() in targets
    assert read_json(run / "summary.json")["status"] == "finished"
    assert not re.search(r"<script[^>]+src=", text)  # plotly.js is inlined: the page opens offline


def test_groups_settings_and_caveats_are_report_md_s(tmp_path: Path):
    """Runs of one agent at two learning rates are two groups, not one pool; the page says the folder is
    mixed, marks the field, and warns about so few seeds, as report.md does."""
    root = tmp_path / "mixed"
    for agent, lr, seeds in (("alpha", 0.001, (0, 1)), ("alpha", 0.003, (0, 1)), ("beta", 0.001, (0, 1))):
        for seed in seeds:
            rows = [{"global_step": s, RETURN: 1000 * lr + seed} for s in (1000, 2000)]
            run = write_run(root / "runs" / str(lr), "CartPole-v1", agent, seed, 1000 * lr + seed, rows)
            config = read_json(run / "config.json") | {"hyperparameters": {"lr": lr, "tau": 1.0}}
            (run / "config.json").write_text(json.dumps(config))
    report = build_report(root, html=True)
    page = report.files[-1].read_text()
    labels = ["alpha [lr=0.001]", "alpha [lr=0.003]", "beta"]
    assert [r.label for r in report.results] == labels
    assert [t["y"] for t in embedded_figures(report.files[-1])["fig-0-iqm"]["data"]] == [[label] for label in labels]
    assert "Mixed folder: runs compared below differ in more than the estimator" in page and "CartPole-v1: lr" in page
    assert '<tr class="beyond"><td class="text">lr</td><td class="text">≠</td>' in page
    assert "<details open><summary>Settings: 1 field differs between the groups (lr; beyond the estimator: lr)" in page
    assert f"Fewer than {FEW_SEEDS} seeds behind 3 of 3 rows" in page


def test_the_embedded_figure_data_is_strict_json_even_with_undefined_numbers():
    """The page reads its figures with JSON.parse, which rejects NaN: an undefined number must be null."""
    from pglab.lab.htmlreport import script_json

    def refuse(constant: str):
        raise ValueError(constant)

    text = script_json({"y": [1.0, float("nan"), float("inf")], "name": "</script>"})
    assert json.loads(text, parse_constant=refuse) == {"y": [1.0, None, None], "name": "</script>"}
    assert "</" not in text
