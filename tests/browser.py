"""Headless Chromium (Debian's package) driven by Selenium: load report.html as a reader's browser would.

Used by tests/test_html_report.py and benchmarks/html_report.py. Chromium and its driver come from
``apt-get install chromium chromium-driver`` (.ci/run installs them); Selenium is told where they
are, so it never looks for or downloads a browser of its own.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
# No sandbox (CI runs as root), no GPU, and nothing that would reach the network on its own.
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,1600",
)
INSTALL_HINT = "install Chromium and its driver: apt-get install -y chromium chromium-driver (see .ci/run)"

# Per figure <div>: whether plotly drew it (its SVG root), and how many traces it holds.
_FIGURES_JS = """
return Array.from(document.querySelectorAll("div.figure")).map(div => ({
  id: div.id,
  drawn: div.classList.contains("js-plotly-plot") && div.querySelector("svg.main-svg") !== null,
  traces: (div.data || []).length,
  legend: Array.from(div.querySelectorAll("g.legend g.traces text.legendtext")).map(t => t.textContent),
}));
"""


@dataclass
class PageLoad:
    """What a loaded report page shows."""

    rendered: int | None  # figures drawn, from <body data-rendered>; None if it never finished
    render_ms: float | None  # ms from navigation start until every figure was drawn
    render_error: str | None
    figures: list[dict[str, Any]]
    console_errors: list[str]
    external: list[str]  # src/href attributes pointing off the machine


@contextmanager
def chromium() -> Iterator[Any]:
    """A fresh headless Chromium (its own new profile) under a Selenium driver."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    if not (CHROMIUM.is_file() and CHROMEDRIVER.is_file()):
        raise RuntimeError(f"{CHROMIUM} or {CHROMEDRIVER} is missing; {INSTALL_HINT}")
    with tempfile.TemporaryDirectory(prefix="pglab-chromium-") as profile:
        options = webdriver.ChromeOptions()
        options.binary_location = str(CHROMIUM)
        for flag in (*FLAGS, f"--user-data-dir={profile}"):
            options.add_argument(flag)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        driver = webdriver.Chrome(options=options, service=Service(executable_path=str(CHROMEDRIVER)))
        try:
            yield driver
        finally:
            driver.quit()


def load(driver: Any, page: Path, timeout: float = 30.0) -> PageLoad:
    """Open ``page`` and wait until its script says every figure is drawn (or failed)."""
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(page.resolve().as_uri())
    body = WebDriverWait(driver, timeout).until(
        lambda d: d.execute_script(
            "const b = document.body; return b && (b.dataset.rendered || b.dataset.renderError) ? b.dataset : null;"
        )
    )
    external = driver.execute_script(
        "return Array.from(document.querySelectorAll('[src],[href]')).map(e => e.getAttribute('src') || "
        "e.getAttribute('href')).filter(u => /^(https?:)?\\/\\//.test(u));"
    )
    return PageLoad(
        rendered=int(body["rendered"]) if "rendered" in body else None,
        render_ms=float(body["renderMs"]) if "renderMs" in body else None,
        render_error=body.get("renderError"),
        figures=driver.execute_script(_FIGURES_JS),
        console_errors=[e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"],
        external=external,
    )
