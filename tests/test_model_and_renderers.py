"""Unit tests: the Run round trip, lenient loading, and each renderer on a hand-built Report."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

import pytest

from dldoctor.collectors.bounded import Decimator
from dldoctor.errors import ReportLoadError
from dldoctor.render import write_reports
from dldoctor.render.html import HtmlRenderer
from dldoctor.render.terminal import TerminalRenderer
from dldoctor.render.trace import TraceRenderer
from dldoctor.run import SCHEMA_VERSION, Report, StackCount
from dldoctor.stats import hot_functions, hot_lines, step_stats, thread_lanes
from tests.handbuilt import handbuilt_report


def test_report_round_trips_through_json() -> None:
    report = handbuilt_report()
    assert Report.from_json(report.to_json()) == report


def test_older_report_missing_sections_loads_with_defaults() -> None:
    data = json.loads(handbuilt_report().to_json())
    del data["run"]["memory"], data["run"]["steps"], data["analyzer_errors"]
    data["run"]["samples"]["future_field"] = 1
    data["schema_version"] = 0
    report = Report.from_json(json.dumps(data))
    assert report.run.memory.points == [] and report.run.steps.count == 0
    assert report.run.samples.ticks == 100


@pytest.mark.parametrize("text, message", [
    ('{"run": ', "not valid JSON"),
    ('{"hello": "world"}', "not a dldoctor report"),
    ('[1, 2]', "not a dldoctor report"),
    ('{"format": "dldoctor-report", "run": {"samples": 5}}', "damaged"),
])
def test_bad_report_json_gives_one_line_error(text: str, message: str) -> None:
    with pytest.raises(ReportLoadError, match=message):
        Report.from_json(text)


@pytest.mark.parametrize("path, value, message", [
    (("samples", "counts", 1, "stack"), 7, r"samples.counts\[1\].stack is 7, outside 0..2$"),
    (("samples", "counts", 0, "thread"), -1, r"samples.counts\[0\].thread is -1, outside 0..1"),
    (("samples", "stacks", 1, 4), 3, r"samples.stacks\[1\] is 3, outside 0..2"),
    (("samples", "timeline", 2, 2), 9, r"samples.timeline\[2\] stack is 9, outside 0..2"),
    (("samples", "timeline", 3), [0.03, 1], r"samples.timeline\[3\] has 2 fields, not 3"),
])
def test_a_report_whose_indexes_point_nowhere_is_damaged(path, value, message) -> None:
    """Right JSON types, wrong cross-references (a hand-edited or half-merged file): one line
    naming the entry, not an IndexError in a renderer."""
    data = json.loads(handbuilt_report().to_json())
    node = data["run"]
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    with pytest.raises(ReportLoadError, match="report is damaged: " + message):
        Report.from_json(json.dumps(data))


def test_missing_report_file(tmp_path: Path) -> None:
    with pytest.raises(ReportLoadError, match="no such report"):
        Report.load(tmp_path / "nope.json")


def test_stats_attribute_to_innermost_user_frame() -> None:
    run = handbuilt_report().run
    lines = [(s.line, s.wall) for s in hot_lines(run)]
    assert lines == [(12, 60), (14, 30), (21, 10)]
    functions = [(f.function, f.self_wall, f.total_wall) for f in hot_functions(run)]
    assert functions == [("train_step", 90, 90), ("<module>", 10, 100)]
    # beside each function its hottest line (line 12 of 12 and 14; the top level's line 21),
    # not its def line (10; 1 for <module>)
    assert [(f.line, f.hot_line) for f in hot_functions(run)] == [(10, 12), (1, 21)]
    steps = step_stats(run)
    assert steps is not None and steps.count == 3
    assert steps.median_s == pytest.approx(0.2) and steps.p90_s == pytest.approx(0.3)


def test_terminal_renderer_exact_output() -> None:
    paths = {"html": Path("r/report.html"), "json": Path("r/report.json")}
    text = TerminalRenderer(paths=paths).render(handbuilt_report())
    assert text == (
        "dldoctor: train.py  exit 0 (ok) in 1.25 s\n"
        "  samples      100 at 100 Hz over 2 thread(s)\n"
        "  peak memory  150.0 MiB RSS (1 process)\n"
        "  steps        3 (explicit), median 200.0 ms, p90 300.0 ms\n"
        "  hottest user code (self time, share of sampled wall time):\n"
        "     90.0%     0.90 s CPU  train.py:12  train_step\n"
        "     10.0%     0.00 s CPU  train.py:21  <module>\n"
        "  findings: 0 error, 1 warning, 0 info\n"
        "    [warning] slow-python-loop  train.py:12  Loop is slow\n"
        "  reports    r/report.html\n"
        "             r/report.json\n"
    )


def test_trace_is_chrome_trace_events() -> None:
    trace = json.loads(TraceRenderer().render(handbuilt_report()))
    events = trace["traceEvents"]
    names = {e["args"]["name"] for e in events if e["ph"] == "M" and e["name"] == "thread_name"}
    assert names == {"steps", "MainThread", "worker"}
    spans = [e for e in events if e["ph"] == "X" and e.get("cat") != "step"]
    main_spans = sorted((e["name"].split(" ")[0], e["ts"], e["dur"]) for e in spans
                        if e["tid"] == 1)
    assert main_spans == [("<module>", 0.0, 30000.0), ("dot", 20000.0, 10000.0),
                          ("train_step", 0.0, 30000.0)]
    steps = [e for e in events if e.get("cat") == "step"]
    assert [(e["name"], e["dur"]) for e in steps] == [("step 1", 200000.0), ("step 2", 200000.0),
                                                     ("step 3", 300000.0)]
    counters = [e for e in events if e["ph"] == "C"]
    assert counters[0]["args"] == {"rss_mib": 100.0, "uss_mib": 90.0}


def test_html_escapes_user_derived_strings() -> None:
    evil = "<script>alert(1)</script>"
    html = HtmlRenderer().render(handbuilt_report(function_name=evil))
    assert evil not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script src" not in html and "http://" not in html.replace("http://www.w3.org", "")


def test_html_is_self_contained() -> None:
    html = HtmlRenderer().render(handbuilt_report())
    assert "<link " not in html and "https://" not in html
    assert html.count("<script") >= 2  # embedded data and inline code
    assert re.findall(r"<(?:script|img|iframe)[^>]*\bsrc=", html) == []


def test_write_reports_is_atomic_and_complete(tmp_path: Path) -> None:
    paths = write_reports(handbuilt_report(), tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html", "report.json",
                                                          "trace.json"]
    assert Report.load(paths["json"]).run.meta.pid == 42
    assert json.loads(paths["json"].read_text())["schema_version"] == SCHEMA_VERSION


def test_decimator_stays_bounded_and_even() -> None:
    d: Decimator[int] = Decimator(100)
    for i in range(10_000):
        d.offer(i)
    assert len(d.items) <= 100 and d.stride >= 64
    gaps = {b - a for a, b in zip(d.items, d.items[1:])}
    assert gaps == {d.stride}


def test_decimator_streaming_matches_extend() -> None:
    producer: Decimator[int] = Decimator(50)
    consumer: Decimator[int] = Decimator(50)
    for i in range(5_000):
        producer.offer(i)
        if i % 100 == 99:
            consumer.extend(producer.take(), producer.stride)
    assert len(consumer.items) <= 50
    assert consumer.items[0] == 0 and consumer.items[-1] > 4_000


def test_decimator_groups_offered_at_once_are_kept_as_offered_row_by_row() -> None:
    """``offer_group`` (one sampling tick's rows in one call) keeps what offering the first
    row and joining the rest to it keeps."""
    grouped: Decimator[list[float]] = Decimator(100)
    joined: Decimator[list[float]] = Decimator(100)
    for tick in range(3_000):
        rows = [[tick, thread, 0] for thread in range(1 + tick % 4)]
        grouped.offer_group(rows)
        grouped.offer_group([])  # a tick that saw no thread takes no position
        for i, row in enumerate(rows):
            joined.offer(row, joined=i > 0)
    assert grouped.stride == joined.stride > 1
    assert grouped.items == joined.items


def test_a_long_timeline_keeps_every_thread() -> None:
    """Two threads per tick, thinned tick by tick (in the sampler and again in the supervisor's
    merge): both threads stay in the timeline, each tick whole. Thinned row by row, stride 2
    kept only the first thread's rows."""
    sampler: Decimator[list[float]] = Decimator(100)
    merged: Decimator[list[float]] = Decimator(60)
    for tick in range(5_000):
        for thread in (0, 1) if tick % 7 else (0, 1, 2):  # a third thread now and then
            sampler.offer([tick / 100, thread, 0], joined=thread > 0)
        if tick % 250 == 249:
            merged.extend(sampler.take(), sampler.stride, key=lambda row: row[0])
    for kept in (sampler.items, merged.items):
        ticks: dict[float, list[float]] = {}
        for t, thread, _stack in kept:
            ticks.setdefault(t, []).append(thread)
        assert all(threads[:2] == [0, 1] for threads in ticks.values()), ticks
    assert len(merged.items) <= 60 and {row[1] for row in merged.items} >= {0, 1}
    rowwise: Decimator[list[float]] = Decimator(100)
    for tick in range(5_000):
        for thread in (0, 1):
            rowwise.offer([tick / 100, thread, 0])
    assert {row[1] for row in rowwise.items} == {0}  # what thinning row by row did


def test_thread_lanes_have_no_holes_where_no_tick_could_run() -> None:
    """Ticks every 10 ms, then none for 0.3 s (C code held the GIL): the sample after the gap
    stands for it, in the lane and the trace as in the counts. Where ticks ran without seeing
    a thread, its lane has a hole."""
    report = handbuilt_report()
    samples = replace(report.run.samples, counts=[
        *report.run.samples.counts, StackCount(0, 2, 10, 0.0)], timeline=[  # (0, 2): idle
        [0.0, 0, 0], [0.01, 0, 0], [0.02, 0, 0], [0.32, 0, 2], [0.33, 0, 2], [0.64, 0, 2],
        [0.0, 1, 2], [0.33, 1, 2]])
    run = replace(report.run, samples=samples)
    lanes = thread_lanes(run)
    assert lanes[0] == [[0.0, 0.03, "running"], [0.03, 0.65, "idle"]]
    assert lanes[1] == [[0.0, 0.01, "idle"], [0.33, 0.34, "idle"]]  # ticks at .01-.32 ran
    trace = json.loads(TraceRenderer().render(replace(report, run=run)))["traceEvents"]
    spans = {(e["tid"], e["name"].split(" (")[0]): (e["ts"], e["dur"])
             for e in trace if e.get("ph") == "X" and e.get("cat") in ("user", "library")}
    assert spans[(1, "train_step")] == (0, 30_000)  # stack 0 until the gap began
    assert spans[(1, "<module>")] == (0, 650_000)  # in both stacks: never closed


def test_slow_python_loop_evidence_gives_each_lines_wall_time_in_seconds() -> None:
    """The hand-built run's line 12 (60 intervals of 10 ms, 0.6 s CPU) inside an element-wise
    loop: its evidence row keeps the interval count and gives the seconds beside it."""
    from dldoctor.analyzers.loops import SlowPythonLoop
    from dldoctor.run import LoopInfo, SourceLine

    run = handbuilt_report().run
    loop = LoopInfo(11, 12, "for", ["i"], ["subscript-loopvar", "arith", "call:range"])
    run = replace(run, sources=[SourceLine("/proj/train.py", 12, "s += a[i] * b[i]", [loop])])
    finding, = SlowPythonLoop().analyze(run)
    assert finding.evidence["lines"] == [{"line": 12, "cpu_s": 0.6, "samples": 60,
                                          "wall_s": 0.6, "text": "s += a[i] * b[i]"}]
    assert finding.evidence["cpu_share"] == pytest.approx(0.6667, abs=1e-4)
