"""Unit tests of the gate: statistics, thresholds, metric sources, baselines and output formats."""

from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from dldoctor.gate import stats
from dldoctor.gate.baseline import baseline_dict, fingerprint_warnings, load_baseline, save_baseline
from dldoctor.gate.evaluate import Settings, Thresholds, compare_paired, compare_series
from dldoctor.gate.metrics import from_output, from_report, infer_spec, load_series
from dldoctor.gate.model import (
    DETERMINISTIC,
    HIGHER,
    IMPROVED,
    INCONCLUSIVE,
    LOWER,
    MEMORY,
    MISSING,
    PASS,
    REGRESSION,
    TIME,
    GateInputError,
    GateResult,
    Measurement,
    MetricResult,
    MetricSeries,
    MetricSpec,
)
from dldoctor.gate.output import FORMATS, JUnitFormat, MarkdownFormat, TableFormat
from dldoctor.run import Memory, Report, Run, RunMeta, Steps


def _runs(values: list[float], name: str = "t_s", spec: MetricSpec | None = None
          ) -> list[Measurement]:
    spec = spec or MetricSpec(name)
    return [Measurement({name: v}, {name: spec}) for v in values]


# --- statistics -------------------------------------------------------------------------------

def test_oriented_log_ratios_handle_zero_and_direction() -> None:
    lower = stats.oriented_log_ratios([1.0, 0.0, 0.0, 2.0], [2.0, 0.0, 5.0, 0.0], LOWER)
    assert lower[0] == pytest.approx(math.log(2))
    assert lower[1] == 0.0
    assert lower[2] == stats.LOG_CAP and lower[3] == -stats.LOG_CAP
    higher = stats.oriented_log_ratios([100.0], [50.0], HIGHER)
    assert higher[0] == pytest.approx(math.log(2))  # throughput halved: worse


def test_paired_estimate_is_seeded_and_brackets_the_median() -> None:
    rng = np.random.default_rng(1)
    base = list(1.0 + rng.normal(0, 0.02, 12))
    cand = [b * 1.3 for b in base]
    one = stats.paired_estimate(base, cand, LOWER, seed=5)
    assert one == stats.paired_estimate(base, cand, LOWER, seed=5)
    assert one.value == pytest.approx(math.log(1.3))
    assert one.low <= one.value <= one.high and one.n == 12


def test_identical_ratios_give_a_point_interval() -> None:
    estimate = stats.paired_estimate([100.0] * 5, [102.0] * 5, LOWER)
    assert estimate.low == estimate.high == estimate.value == pytest.approx(math.log(1.02))


@pytest.mark.parametrize(("low", "high", "verdict"), [
    (math.log(1.11), math.log(1.3), REGRESSION),
    (math.log(1.05), math.log(1.2), INCONCLUSIVE),
    (math.log(0.95), math.log(1.09), PASS),
    (math.log(0.5), math.log(0.9), IMPROVED),
])
def test_decide(low: float, high: float, verdict: str) -> None:
    assert stats.decide(stats.Estimate((low + high) / 2, low, high, 10), 0.10) == verdict


def test_unpaired_single_samples_are_a_point_comparison() -> None:
    estimate = stats.unpaired_estimate([200.0], [250.0], LOWER)
    assert estimate.low == estimate.high == pytest.approx(math.log(1.25))


def test_simulated_aa_false_positive_rate_is_small() -> None:
    """200 A/A gates over heavy-tailed noise (lognormal 10 % plus 10 % outliers): the gate
    must almost never call a regression."""
    rng = np.random.default_rng(42)
    regressions = 0
    for trial in range(200):
        drift = rng.normal(0, 0.05, 10)  # shared by both sides of a pair
        base = np.exp(drift + rng.normal(0, 0.1, 10)) * (1 + (rng.random(10) < 0.1))
        cand = np.exp(drift + rng.normal(0, 0.1, 10)) * (1 + (rng.random(10) < 0.1))
        estimate = stats.paired_estimate(list(base), list(cand), LOWER, seed=trial)
        regressions += stats.decide(estimate, 0.10) == REGRESSION
    assert regressions / 200 < 0.05


# --- thresholds and evaluation ----------------------------------------------------------------

def test_thresholds_parse() -> None:
    thresholds = Thresholds.parse(["5%", "memory=3", "alloc_bytes=0.5%", "deterministic=0.01"])
    assert thresholds.of(MetricSpec("t", TIME)) == pytest.approx(0.05)
    assert thresholds.of(MetricSpec("rss", MEMORY)) == pytest.approx(0.03)
    assert thresholds.of(MetricSpec("alloc_bytes", DETERMINISTIC)) == pytest.approx(0.005)
    assert thresholds.of(MetricSpec("x", DETERMINISTIC)) == pytest.approx(0.01)
    assert thresholds.of(MetricSpec("y", TIME, threshold=0.2)) == pytest.approx(0.2)


@pytest.mark.parametrize("text", ["ten", "memory=", "x=-5%", "0"])
def test_bad_thresholds_are_input_errors(text: str) -> None:
    with pytest.raises(GateInputError):
        Thresholds.parse([text])


def test_compare_paired_reports_one_sided_metrics() -> None:
    base = [Measurement({"a": 1.0, "only_base": 1.0}) for _ in range(4)]
    cand = [Measurement({"a": 1.0, "only_cand": 2.0}) for _ in range(4)]
    results = {r.spec.name: r for r in compare_paired(base, cand, Settings())}
    assert results["a"].verdict == PASS
    assert results["only_base"].verdict == MISSING and results["only_cand"].verdict == MISSING
    assert "candidate" in results["only_base"].note and "baseline" in results["only_cand"].note


def test_ignored_metrics_are_left_out() -> None:
    runs = [Measurement({"wall_s": 1.0, "work_s": 2.0, "work_x": 3.0})]
    results = compare_paired(runs, runs, Settings(ignore=("wall_s", "*_x")))
    assert [r.spec.name for r in results] == ["work_s"]


def test_floor_turns_a_tiny_absolute_change_into_a_pass() -> None:
    spec = MetricSpec("alloc_bytes", DETERMINISTIC, "B", floor=4096)
    small = compare_paired(_runs([1000.0], spec=spec), _runs([2000.0], spec=spec), Settings())
    large = compare_paired(_runs([1e6], spec=spec), _runs([1.1e6], spec=spec), Settings())
    assert small[0].verdict == PASS and "floor" in small[0].note
    assert large[0].verdict == REGRESSION


def test_compare_series_with_spread_and_direction() -> None:
    spec = MetricSpec("throughput", TIME, better=HIGHER)
    base = MetricSeries({"throughput": [100.0, 101.0, 99.0, 100.5]}, {"throughput": spec})
    cand = MetricSeries({"throughput": [70.0, 71.0, 69.5, 70.2]}, {"throughput": spec})
    (result,) = compare_series(base, cand, Settings())
    assert result.verdict == REGRESSION
    assert result.ratio == pytest.approx(0.70, abs=0.01)


# --- metric sources ---------------------------------------------------------------------------

def test_from_output_parses_plain_and_described_metrics() -> None:
    text = ("hello\nDLDOCTOR_METRICS {\"step_s\": 0.5, \"alloc_bytes\": 100}\n"
            "DLDOCTOR_METRICS {\"tput\": {\"value\": 9, \"better\": \"higher\", \"unit\": \"it/s\","
            " \"kind\": \"time\", \"threshold\": 0.2}, \"step_s\": 0.25}\n")
    found = from_output(text)
    assert found.values == {"step_s": 0.25, "alloc_bytes": 100.0, "tput": 9.0}
    assert found.specs["alloc_bytes"].kind == DETERMINISTIC
    assert found.specs["tput"] == MetricSpec("tput", TIME, "it/s", HIGHER, 0.2)


@pytest.mark.parametrize("line", ["DLDOCTOR_METRICS {oops", "DLDOCTOR_METRICS [1]",
                                  "DLDOCTOR_METRICS {\"a\": \"fast\"}",
                                  "DLDOCTOR_METRICS {\"a\": {\"value\": 1, \"kind\": \"vibes\"}}"])
def test_bad_metric_lines_are_input_errors(line: str) -> None:
    with pytest.raises(GateInputError):
        from_output(line)


@pytest.mark.parametrize(("name", "kind", "better", "unit"), [
    ("wall_s", TIME, LOWER, "s"), ("peak_rss_bytes", MEMORY, LOWER, "B"),
    ("alloc_count", DETERMINISTIC, LOWER, ""), ("instructions", DETERMINISTIC, LOWER, ""),
    ("samples_per_s", TIME, HIGHER, ""), ("alloc_peak_bytes", DETERMINISTIC, LOWER, "B"),
])
def test_infer_spec(name: str, kind: str, better: str, unit: str) -> None:
    spec = infer_spec(name)
    assert (spec.kind, spec.better, spec.unit) == (kind, better, unit)


def _report(**extra: object) -> Report:
    run = Run(meta=RunMeta(duration_s=2.5), memory=Memory(peak_rss=50_000_000),
              steps=Steps("explicit", 3, [0.0, 0.5, 1.0]), extra=dict(extra))
    return Report(run=run)


def test_from_report_reads_figures_defensively() -> None:
    found = from_report(_report(allocations={"allocated_bytes": 1234, "label": "x"},
                                metrics={"tokens_per_s": 10.0}, records=[{"type": "a"}]))
    assert found.values == {"duration_s": 2.5, "peak_rss_bytes": 5e7, "step_median_s": 0.5,
                            "allocations.allocated_bytes": 1234.0, "tokens_per_s": 10.0}
    assert found.specs["allocations.allocated_bytes"].kind == DETERMINISTIC
    assert found.specs["tokens_per_s"].better == HIGHER


def test_load_series_reads_every_saved_format(tmp_path: Path) -> None:
    report = tmp_path / "run" / "report.json"
    report.parent.mkdir()
    report.write_text(_report().to_json())
    assert load_series(report.parent).samples["duration_s"] == [2.5]
    plain = tmp_path / "m.json"
    plain.write_text('{"metrics": {"a_s": 1.5}}')
    assert load_series(plain).samples == {"a_s": [1.5]}
    result = GateResult(compare_paired(_runs([1.0, 1.1]), _runs([2.0, 2.1]), Settings()))
    saved = tmp_path / "result.json"
    saved.write_text(FORMATS["json"]().render(result))
    assert load_series(saved).samples == {"t_s": [2.0, 2.1]}


@pytest.mark.parametrize(("content", "message"), [
    (None, "does not exist"), ("{\"format\": \"dldoctor-gate-baseline\", ", "not valid JSON"),
    ("{\"format\": \"other\"}", "not a dldoctor gate baseline"),
    ("{\"format\": \"dldoctor-gate-baseline\", \"metrics\": {\"a\": {}}}", "no samples"),
])
def test_bad_baselines_say_what_is_wrong(tmp_path: Path, content: str | None,
                                         message: str) -> None:
    path = tmp_path / "base.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(GateInputError, match=message) as info:
        load_baseline(path)
    assert info.value.exit_code == 2


def test_baseline_roundtrip_keeps_only_wanted_kinds(tmp_path: Path) -> None:
    specs = {"alloc_bytes": infer_spec("alloc_bytes"), "wall_s": infer_spec("wall_s")}
    series = MetricSeries({"alloc_bytes": [10.0, 10.0], "wall_s": [1.0]}, specs, {"cpus": 2})
    path = tmp_path / "b" / "base.json"
    save_baseline(path, baseline_dict(series, (DETERMINISTIC,)))
    loaded = load_baseline(path)
    assert loaded.samples == {"alloc_bytes": [10.0, 10.0]}
    assert loaded.specs["alloc_bytes"].kind == DETERMINISTIC and loaded.fingerprint == {"cpus": 2}


def test_fingerprint_warnings_name_the_difference() -> None:
    assert fingerprint_warnings({"cpus": 2, "python": "3.11.7"}, {"cpus": 2}) == []
    (warning,) = fingerprint_warnings({"cpus": 2, "cpu": "A"}, {"cpus": 8, "cpu": "A"})
    assert "cpus 2 now 8" in warning


# --- output formats ---------------------------------------------------------------------------

def _result() -> GateResult:
    wall = MetricSpec("wall_s", TIME, "s")
    alloc = MetricSpec("alloc_bytes", DETERMINISTIC, "B")
    return GateResult([
        MetricResult(wall, 0.1, REGRESSION, [0.1, 0.1], [0.13, 0.13], True, 1.3, (1.25, 1.35)),
        MetricResult(alloc, 0.02, PASS, [2048.0], [2048.0], True, 1.0, (1.0, 1.0)),
        MetricResult(MetricSpec("x_s", TIME, "s"), 0.1, MISSING, [1.0], [], True,
                     note="not measured on the candidate side"),
    ], "run", 2, "old", "new", ["machine differs"])


def test_table_output_is_exact() -> None:
    assert TableFormat().render(_result()) == (
        "dldoctor gate: REGRESSION (new vs old, 2 interleaved pairs)\n"
        "  metric       kind           baseline  candidate  change  95% CI           limit  n"
        "  verdict\n"
        "  wall_s       time           100.0 ms  130.0 ms   +30.0%  +25.0% … +35.0%  +10%   2"
        "  regression\n"
        "  alloc_bytes  deterministic  2.0 KiB   2.0 KiB    +0.0%   -                +2%    1"
        "  pass\n"
        "  x_s          time           1.00 s    -          -       -                +10%   1"
        "  missing\n"
        "  note: x_s: not measured on the candidate side\n"
        "  warning: machine differs\n")


def test_markdown_and_junit_outputs() -> None:
    markdown = MarkdownFormat().render(_result())
    assert markdown.startswith("### dldoctor gate: REGRESSION")
    assert "| `wall_s` | time | 100.0 ms | 130.0 ms | +30.0% |" in markdown
    assert "✗ regression" in markdown
    suite = ET.fromstring(JUnitFormat().render(_result()).split("?>", 1)[1]).find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("3", "1", "1")
    cases = {c.get("name"): c for c in suite.iter("testcase")}
    assert cases["wall_s"].find("failure") is not None
    assert cases["x_s"].find("skipped") is not None


def test_json_output_is_complete() -> None:
    data = json.loads(FORMATS["json"]().render(_result()))
    assert (data["format"], data["verdict"], data["exit_code"], data["pairs"]) == (
        "dldoctor-gate", REGRESSION, 1, 2)
    assert data["metrics"][0]["candidate"]["samples"] == [0.13, 0.13]
    assert data["metrics"][2]["ratio"] is None
