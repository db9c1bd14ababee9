"""``--native``: py-spy's native stacks, parsed (exact), summed (exact), rendered (escaped), and
end to end on a real NumPy script (py-spy attached to the real target)."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from dldoctor.collectors.native import NATIVE_OFF, NativeSampler, find_pyspy, parse_raw
from dldoctor.errors import ReportLoadError
from dldoctor.render.html import HtmlRenderer
from dldoctor.render.terminal import TerminalRenderer
from dldoctor.run import NativeFrame, NativeProfile, Report
from dldoctor.stats import NO_SYMBOL, PYTHON_CODE, native_functions, native_libraries
from tests.conftest import run_plain
from tests.handbuilt import handbuilt_report

OWN = str(Path(__file__).resolve().parents[1] / "dldoctor")  # dldoctor's frames' files
STDLIB = os.path.dirname(os.__file__)

BOOT = 'process 42:"python -c import sys; sys.path[0] = \'/x\'; from dldoctor.runner.child ' \
       'import main; main()";thread (42): MainThread;_start (/usr/bin/python3.11);' \
       f'<module> (<string>:1);main ({OWN}/runner/child.py:80);' \
       f'_run_script ({OWN}/runner/child.py:33)'
RAW = "\n".join([
    f"{BOOT};<module> (/proj/train.py:5);dgemm_kernel (/lib/libopenblas.so) 30",
    f"{BOOT};<module> (/proj/train.py:5);dgemm_kernel (/lib/libopenblas.so) 5",
    # py-spy names a thread once Python has: an unnamed line of the same thread id
    'process 42:"python -c x";thread (42);<module> (/proj/train.py:5);'
    "dgemm_kernel (/lib/libopenblas.so) 10",
    f"{BOOT};<module> (/proj/train.py:9);f(int) (/lib/libtorch.so);"
    "std::vector<int, a (b)>::push (/lib/libtorch.so) 4",
    f"{BOOT};<module> (/proj/train.py:9) 6",
    # a spawned worker (its -c string runs the worker loop), and dldoctor's own agent thread
    # (only dldoctor frames: dropped)
    'process 43:"python -c x";thread (43): MainThread;<module> (<string>:1);'
    "loop (/usr/lib/python3.11/site-packages/torch/utils/data/worker.py:300);"
    "read (/lib/libc.so.6) 2",
    f'process 42:"python -c x";thread (44);_run ({OWN}/collectors/ownthread.py:60);'
    "select (/lib/libc.so.6) 50",
    # dldoctor's start-up imports and its work at exit in the main thread: dropped too
    'process 42:"python -c x";thread (42): MainThread;<module> (<string>:1);'
    "_find_and_load (<frozen importlib>:1);"
    f"<module> ({OWN}/runner/agent.py:3);<module> ({STDLIB}/dataclasses.py:9) 3",
    'process 42:"python -c x";thread (42): MainThread;_find_and_load (<frozen importlib>:1);'
    "main (<frozen site>:599);<module> (<string>:1);_find_and_load (<frozen importlib>:1) 1",
    'process 42:"python -c x";thread (42): MainThread;<module> (<string>:1);'
    "_find_and_load (<frozen importlib>:1);get_data (<frozen importlib._bootstrap_external>:1) 1",
    f'process 42:"python -c x";thread (42): MainThread;finish ({OWN}/runner/agent.py:150);'
    "write (/lib/libc.so.6) 1",
    f'process 42:"python -c x";thread (44);_loop ({OWN}/runner/agent.py:99);'
    f"dumps ({STDLIB}/json/__init__.py:238);encoder_call (Modules/_json.c:1305) 2",
    f"{BOOT.rsplit(';', 1)[0]};import_module ({STDLIB}/importlib/__init__.py:126);"
    "_find_and_load (<frozen importlib._bootstrap>:1176) 1",
    "not a stack line",
])


def _profile() -> NativeProfile:
    return parse_raw(RAW, 100, root_pid=42)


def test_raw_stacks_are_parsed_cropped_and_merged_per_thread() -> None:
    profile = _profile()
    assert profile.available and profile.rate == 100 and profile.dropped == 0
    assert profile.threads == ["MainThread", "pid 43: MainThread"]
    frames = [(f.function, f.file, f.line, f.kind) for f in profile.frames]
    assert frames == [
        ("<module>", "/proj/train.py", 5, "user"),
        ("dgemm_kernel", "/lib/libopenblas.so", 0, "native"),
        ("<module>", "/proj/train.py", 9, "user"),
        ("f(int)", "/lib/libtorch.so", 0, "native"),
        ("std::vector<int, a (b)>::push", "/lib/libtorch.so", 0, "native"),
        ("loop", "/usr/lib/python3.11/site-packages/torch/utils/data/worker.py", 300, "library"),
        ("read", "/lib/libc.so.6", 0, "native")]
    assert profile.stacks == [[0, 1], [2], [2, 3, 4], [5, 6]]
    assert profile.counts == [[0, 0, 45], [0, 1, 6], [0, 2, 4], [1, 3, 2]]


def test_only_the_most_sampled_stacks_are_kept() -> None:
    profile = parse_raw(RAW, 100, root_pid=42, stack_cap=2)
    assert profile.counts == [[0, 0, 45], [0, 1, 6]] and profile.dropped == 6


def test_native_functions_and_libraries_sum_self_samples() -> None:
    run = replace(handbuilt_report().run, native=_profile())
    stats = [(s.function, s.library, s.samples, round(s.share, 4), s.caller)
             for s in native_functions(run)]
    assert stats == [
        ("dgemm_kernel", "libopenblas.so", 45, 0.7895, ("/proj/train.py", 5, "<module>")),
        (PYTHON_CODE, "", 6, 0.1053, ("/proj/train.py", 9, "<module>")),
        ("std::vector<int, a (b)>::push", "libtorch.so", 4, 0.0702,
         ("/proj/train.py", 9, "<module>")),
        ("read", "libc.so.6", 2, 0.0351, None)]
    assert native_libraries(run) == [("libopenblas.so", 45, 45 / 57), (PYTHON_CODE, 6, 6 / 57),
                                      ("libtorch.so", 4, 4 / 57), ("libc.so.6", 2, 2 / 57)]


def test_bare_addresses_of_a_library_are_summed_as_one_function() -> None:
    raw = "\n".join(f"{BOOT};<module> (/proj/train.py:5);{address} (/lib/libgomp.so.1) {n}"
                    for address, n in (("0x7f12ab", 3), ("0x7f34cd", 2)))
    run = replace(handbuilt_report().run, native=parse_raw(raw, 25, root_pid=42))
    assert [(s.function, s.library, s.samples) for s in native_functions(run)] == \
        [(NO_SYMBOL, "libgomp.so.1", 5)]


def test_terminal_and_html_show_native_code_escaped() -> None:
    profile = _profile()
    frames = list(profile.frames)
    frames[1] = replace(frames[1], function="<script>alert(1)</script>")
    report = handbuilt_report()
    report = Report(run=replace(report.run, native=replace(profile, frames=frames)),
                    findings=report.findings)
    text = TerminalRenderer().render(report)
    assert "  hottest native code (py-spy, self samples):\n" \
           "     78.9%  <script>alert(1)</script> (libopenblas.so)  under train.py:5\n" in text
    html = HtmlRenderer().render(report)
    section = html.split('<section id="native">', 1)[1].split("</section>", 1)[0]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in section and "<script>" not in section
    assert "std::vector&lt;int, a (b)&gt;::push" in section
    assert "libopenblas.so" in section.split('id="native-libraries"', 1)[1]


def test_native_section_says_why_when_asked_for_and_is_absent_otherwise() -> None:
    report = handbuilt_report()
    assert '<section id="native">' not in HtmlRenderer().render(report)  # not asked for
    assert report.run.native.reason == "" or report.run.native.reason == NATIVE_OFF
    why = "py-spy is not installed (pip install py-spy)"
    missing = Report(run=replace(report.run, native=NativeProfile(reason=why)))
    assert f"No native samples: {why}" in HtmlRenderer().render(missing)
    assert f"  native code: none sampled: {why}\n" in TerminalRenderer().render(missing)
    off = Report(run=replace(report.run, native=NativeProfile(reason=NATIVE_OFF)))
    assert "native code" not in TerminalRenderer().render(off)


def test_without_pyspy_the_sampler_says_why() -> None:
    sampler, why = NativeSampler.start(1, 100, pyspy=None)
    assert sampler is None and why == "py-spy is not installed (pip install py-spy)"


def test_native_profile_round_trips_through_report_json() -> None:
    report = handbuilt_report()
    report = Report(run=replace(report.run, native=_profile()), findings=report.findings)
    loaded = Report.from_json(report.to_json())
    assert loaded.run.native == report.run.native
    assert isinstance(loaded.run.native.frames[0], NativeFrame)


def test_a_native_count_past_the_stacks_is_damage() -> None:
    report = handbuilt_report()
    profile = _profile()
    bad = replace(profile, counts=[*profile.counts, [0, len(profile.stacks), 1]])
    text = Report(run=replace(report.run, native=bad)).to_json()
    with pytest.raises(ReportLoadError, match=r"native.counts\[4\] stack is 4, outside 0..3"):
        Report.from_json(text)


def _pyspy_problem() -> str:
    pyspy = find_pyspy()
    if pyspy is None:
        return "py-spy is not installed"
    probe = subprocess.run([pyspy, "record", "--native", "--duration", "1", "--format", "raw",
                            "-o", "/dev/null", "--", sys.executable, "-c",
                            "import time; time.sleep(0.3)"], capture_output=True, text=True)
    return "" if probe.returncode == 0 else f"py-spy cannot sample here: {probe.stderr[-200:]}"


@pytest.fixture(scope="module")
def pyspy_ok() -> None:
    problem = _pyspy_problem()
    if problem:
        pytest.skip(problem)


def test_native_run_names_the_blas_kernel_under_the_users_matmul_line(pyspy_ok, profile,
                                                                      write_script) -> None:
    script = write_script("matmul.py", """\
        import sys, time
        import numpy as np
        a = np.random.default_rng(0).random((500, 500))
        end = time.perf_counter() + 1.5
        while time.perf_counter() < end:
            b = a @ a
        print("done", b.shape)
        sys.exit(3)
        """)
    result = profile(script, options=("-q", "--native"))
    plain = run_plain(script)
    assert (result.returncode, result.stdout, result.stderr) == \
        (plain.returncode, plain.stdout, plain.stderr) == (3, b"done (500, 500)\n", b"")
    report = Report.load(result.out_dir / "report.json")
    assert report.run.native.available, report.run.native.reason
    top = native_functions(report.run)[0]
    assert "blas" in top.library.lower(), native_functions(report.run)[:5]
    assert top.caller == (str(script), 6, "<module>")
    assert report.run.native.threads[0] == "MainThread"
    # cropped: every stack starts at the script's own top level (dldoctor's bootstrap, threads
    # and start-up are gone; its import hook may still run inside the script's imports)
    native = report.run.native
    assert {(native.frames[native.stacks[stack][0]].file,
             native.frames[native.stacks[stack][0]].function)
            for _thread, stack, _n in native.counts} == {(str(script), "<module>")}
