"""The HTML report in a real headless Chromium: it renders offline, draws its charts from the
embedded data, and user-derived strings never execute."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from dldoctor.render import write_reports
from tests.handbuilt import handbuilt_report

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium is not installed")]
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--blink-settings=imagesEnabled=true"]


def chromium(args: list[str], tmp_path: Path) -> str:
    """Run headless Chromium with a fresh profile; return stdout."""
    profile = tmp_path / "chrome-profile"
    proc = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args],
                          capture_output=True, text=True, timeout=90)
    return proc.stdout


def test_report_renders_charts_offline(tmp_path: Path) -> None:
    paths = write_reports(handbuilt_report(), tmp_path)
    dom = chromium(["--virtual-time-budget=3000", "--dump-dom", paths["html"].as_uri()], tmp_path)
    assert 'data-rendered="1"' in dom  # the inline script ran to the end
    assert dom.count('class="series"') >= 3  # RSS, USS and step-duration lines were drawn
    assert dom.count('class="marker"') == 1  # the one USS reading: a dot (a line needs two)
    assert "Loop is slow" in dom and "train_step" in dom


def test_injected_markup_does_not_execute(tmp_path: Path) -> None:
    payload = '<img src=x onerror="document.body.setAttribute(\'data-pwned\',\'1\')">'
    paths = write_reports(handbuilt_report(function_name=payload), tmp_path)
    dom = chromium(["--virtual-time-budget=3000", "--dump-dom", paths["html"].as_uri()], tmp_path)
    assert 'data-rendered="1"' in dom
    assert "data-pwned" not in dom.split("<body", 1)[1].split(">", 1)[0]
    assert "&lt;img src=x" in dom  # shown as text


def test_screenshot(tmp_path: Path) -> None:
    paths = write_reports(handbuilt_report(), tmp_path)
    shot = tmp_path / "shot.png"
    chromium(["--window-size=1280,1600", f"--screenshot={shot}", paths["html"].as_uri()], tmp_path)
    assert shot.exists() and shot.stat().st_size > 10_000


def test_each_tab_group_switches_its_own_section(tmp_path: Path) -> None:
    """Clicking the native section's "libraries" tab shows its libraries pane and leaves the
    "Where the time goes" panes as they were (one page-wide handler hid them all before)."""
    from dataclasses import replace

    from dldoctor.collectors.native import parse_raw
    from dldoctor.run import Report

    raw = ('process 1:"python x";thread (1): MainThread;<module> (/proj/train.py:5);'
           "dgemm_kernel (/lib/libopenblas.so) 3")
    base = handbuilt_report()
    report = Report(run=replace(base.run, native=parse_raw(raw, 25, root_pid=1)),
                    findings=base.findings)
    paths = write_reports(report, tmp_path)
    probe = tmp_path / "probe.html"
    probe.write_text(f"""<!doctype html><body><iframe id="f" src="{paths['html'].name}"></iframe>
<script>
document.getElementById("f").addEventListener("load", function () {{
  var d = this.contentDocument, out = [];
  d.querySelector('[data-tab="native-libraries"]').click();
  d.querySelectorAll("[data-pane]").forEach(function (p) {{
    out.push(p.getAttribute("data-pane") + "=" + (p.hidden ? "hidden" : "shown"));
  }});
  document.body.setAttribute("data-panes", out.join(","));
}});
</script></body>""")
    dom = chromium(["--allow-file-access-from-files", "--virtual-time-budget=5000",
                    "--dump-dom", probe.as_uri()], tmp_path)
    panes = dom.split('data-panes="', 1)[1].split('"', 1)[0].split(",")
    assert panes == ["user=shown", "library=hidden", "lines=hidden",
                     "native-functions=hidden", "native-libraries=shown"], panes
