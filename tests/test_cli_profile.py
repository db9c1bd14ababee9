"""CLI tests: the real ``dldoctor`` in a subprocess on small scripts, compared with plain python."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import run_cli, run_plain

IO_SCRIPT = """
    import sys
    print("argv", sys.argv)
    print("path0", sys.path[0] == __import__("os").path.dirname(__file__), __name__)
    sys.stdout.write("no newline")
    sys.stderr.write("to stderr\\n")
    data = sys.stdin.read()
    print("stdin", repr(data))
    sys.exit(int(sys.argv[1]) if len(sys.argv) > 1 else 0)
"""


@pytest.mark.parametrize("code", ["0", "3"])
def test_exit_code_and_streams_match_plain_python(write_script, profile, code: str) -> None:
    script = write_script("io.py", IO_SCRIPT)
    expected = run_plain(script, code, "--flag", stdin=b"hello\x00bytes")
    got = profile(script, code, "--flag", stdin=b"hello\x00bytes", options=("-q",))
    assert got.returncode == expected.returncode == int(code)
    assert got.stdout == expected.stdout
    assert got.stderr == expected.stderr
    assert got.report()["run"]["meta"]["exit_code"] == int(code)


def test_the_program_sees_the_argv_and_main_module_python_gives_it(write_script,
                                                                    profile) -> None:
    # sys.orig_argv was the bootstrap's "-c" line: a program that re-executes itself with it
    # started a bare bootstrap; __main__ lacked the __annotations__ python's has
    script = write_script("argv.py", """
        import sys
        print(sys.orig_argv[-3:], sys.argv)
        print(sorted(globals()), __annotations__)
        """)
    expected = run_plain(script, "a", "--b")
    got = profile(script, "a", "--b", options=("-q",))
    assert (got.returncode, got.stdout, got.stderr) == \
        (expected.returncode, expected.stdout, expected.stderr)


def test_the_program_inherits_the_file_descriptors_python_would(write_script,
                                                                  tmp_path: Path) -> None:
    # A launcher's open descriptor (a make jobserver's pipe, a passed socket) reached plain
    # python but not the profiled program
    script = write_script("fd.py", """
        import os, sys
        fd = int(sys.argv[1])
        print(os.get_inheritable(fd), os.write(fd, b"from the program"))
        """)
    got = {}
    for name, command in (("plain", [sys.executable, str(script)]),
                          ("profiled", [sys.executable, "-m", "dldoctor", "profile", "-q",
                                        "--out", str(tmp_path / "out"), str(script)])):
        read, write = os.pipe()
        proc = subprocess.run([*command, str(write)], pass_fds=(write,), capture_output=True,
                              timeout=60, cwd=tmp_path)
        os.close(write)
        with os.fdopen(read, "rb") as pipe:
            got[name] = (proc.returncode, proc.stdout, proc.stderr, pipe.read())
    assert got["profiled"] == got["plain"] == (0, b"True 16\n", b"", b"from the program")


@pytest.mark.parametrize("packed", ["directory", "zipapp"])
def test_a_directory_or_zipapp_with_a_main_runs_as_python_runs_it(write_script, profile,
                                                                   tmp_path: Path,
                                                                   packed: str) -> None:
    # python runs a directory's (or a zip file's) __main__.py with the directory itself as
    # sys.path[0]; dldoctor accepted a directory, then failed to open it as a file
    write_script("app/helper.py", "def spin(n):\n    return sum(i % 7 for i in range(n))\n")
    write_script("app/__main__.py", """
        import sys
        import helper
        print(sys.argv, sys.path[0], __name__, __file__)
        print(helper.spin(3_000_000))
        """)
    target = tmp_path / "app"
    if packed == "zipapp":
        import zipapp
        zipapp.create_archive(target, tmp_path / "app.pyz")
        target = tmp_path / "app.pyz"
    expected = run_plain(target, "x")
    got = profile(target, "x", options=("-q",))
    assert (got.returncode, got.stdout, got.stderr) == \
        (expected.returncode, expected.stdout, expected.stderr)
    hot = {f["file"] for f in got.report()["run"]["samples"]["frames"] if f["kind"] == "user"}
    assert any(name.endswith("helper.py") for name in hot), hot


def test_summary_goes_to_stderr_after_target_output(write_script, profile) -> None:
    script = write_script("io.py", IO_SCRIPT)
    expected = run_plain(script, stdin=b"")
    got = profile(script, stdin=b"")
    assert got.stdout == expected.stdout
    assert got.stderr.startswith(expected.stderr)
    summary = got.stderr[len(expected.stderr):].decode()
    assert summary.startswith("dldoctor: io.py  exit 0 (ok)")
    assert str(got.out_dir / "report.html") in summary


def test_uncaught_exception_prints_like_python(write_script, profile) -> None:
    script = write_script("boom.py", """
        def inner():
            raise ValueError("bad value")
        inner()
    """)
    expected = run_plain(script)
    got = profile(script, options=("-q",))
    assert got.returncode == expected.returncode == 1
    assert got.stderr == expected.stderr
    meta = got.report()["run"]["meta"]
    assert meta["status"] == "error" and meta["exception"] == "ValueError: bad value"


def test_an_exception_that_cannot_be_printed_prints_like_python(write_script, profile) -> None:
    # dldoctor's own str(exc) raised inside its handler: a second traceback, with its frames
    script = write_script("unprintable.py", """
        class Unprintable(Exception):
            def __str__(self):
                raise ValueError("no str")
        raise Unprintable()
    """)
    expected = run_plain(script)
    got = profile(script, options=("-q",))
    assert got.returncode == expected.returncode == 1
    assert got.stderr == expected.stderr
    assert got.report()["run"]["meta"]["exception"] == "Unprintable: <exception str() failed>"


def test_os_exit_keeps_code_and_flushes(write_script, profile) -> None:
    script = write_script("osexit.py", """
        import os, time
        end = time.time() + 0.3
        while time.time() < end:
            pass
        os._exit(7)
    """)
    got = profile(script, options=("-q",))
    assert got.returncode == 7
    report = got.report()
    assert report["run"]["meta"]["incomplete"] is False
    assert report["run"]["samples"]["ticks"] > 5


def test_killed_by_signal_gives_128_plus_n_and_a_report(write_script, profile) -> None:
    script = write_script("term.py", """
        import os, signal, time
        time.sleep(0.3)
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)
    """)
    got = profile(script, options=("-q",))
    assert got.returncode == 128 + signal.SIGTERM
    meta = got.report()["run"]["meta"]
    assert meta["status"] == "killed" and meta["signal"] == signal.SIGTERM
    assert meta["incomplete"] is True


def test_segfault_still_leaves_a_report(write_script, profile) -> None:
    script = write_script("segv.py", """
        import ctypes, time
        time.sleep(1.2)
        ctypes.string_at(0)
    """)
    got = profile(script, options=("-q",))
    assert got.returncode == 128 + signal.SIGSEGV
    report = got.report()
    assert report["run"]["meta"]["status"] == "crashed"
    assert report["run"]["samples"]["ticks"] > 0  # data flushed before the crash survived


def test_threads_are_sampled_with_names(write_script, profile) -> None:
    script = write_script("threads.py", """
        import threading, time
        def spin():
            end = time.time() + 0.4
            while time.time() < end:
                pass
        t = threading.Thread(target=spin, name="spinner")
        t.start(); t.join()
    """)
    report = profile(script, options=("-q",)).report()
    names = {t["name"] for t in report["run"]["samples"]["threads"]}
    assert {"MainThread", "spinner"} <= names
    frames = report["run"]["samples"]["frames"]
    assert any(f["function"] == "spin" and f["kind"] == "user" for f in frames)
    assert not any(f["kind"] == "dldoctor" for f in frames)


def test_module_form_and_double_dash(tmp_path: Path) -> None:
    pkg = tmp_path / "mypkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "train.py").write_text("import sys, time\nprint(sys.argv[1:], __name__)\n"
                                  "time.sleep(0.3)\n")
    got = run_cli(["profile", "-q", "--out", "r", "-m", "mypkg.train", "--", "--lr", "0.1"],
                  cwd=tmp_path)
    expected = subprocess.run([sys.executable, "-m", "mypkg.train", "--lr", "0.1"], cwd=tmp_path,
                              capture_output=True)
    assert got.returncode == 0 and got.stdout == expected.stdout
    run = json.loads((tmp_path / "r" / "report.json").read_text())["run"]
    assert run["meta"]["mode"] == "module" and run["meta"]["argv"] == ["--lr", "0.1"]
    # runpy below the module is cropped like the script bootstrap (3.11: "<frozen runpy>")
    samples = run["samples"]
    roots = {samples["frames"][stack[0]]["file"] for stack in samples["stacks"]}
    assert str(pkg / "train.py") in roots and "<frozen runpy>" not in roots, roots


def test_timeout_stops_a_hung_target_and_writes_report(write_script, profile) -> None:
    script = write_script("hang.py", """
        import time
        def wait_forever():
            while True:
                time.sleep(0.05)
        wait_forever()
    """)
    start = time.monotonic()
    got = profile(script, options=("-q", "--timeout", "1.5"))
    assert time.monotonic() - start < 30
    assert got.returncode == 124
    report = got.report()
    assert report["run"]["meta"]["status"] == "timeout"
    functions = {f["function"] for f in report["run"]["samples"]["frames"]}
    assert "wait_forever" in functions


def test_ctrl_c_interrupts_target_and_report_is_written(write_script, tmp_path: Path) -> None:
    script = write_script("loop.py", """
        import time
        print("ready", flush=True)
        try:
            while True:
                time.sleep(0.05)
        finally:
            print("cleanup ran", flush=True)
    """)
    out = tmp_path / "ctrlc"
    proc = subprocess.Popen([sys.executable, "-m", "dldoctor", "profile", "-q", "--out", str(out),
                             str(script)], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)
    assert proc.stdout is not None
    assert proc.stdout.readline() == b"ready\n"
    time.sleep(0.3)
    os.killpg(proc.pid, signal.SIGINT)  # what the terminal does on Ctrl-C
    stdout, stderr = proc.communicate(timeout=30)
    said = (proc.returncode, stdout, stderr)
    assert b"cleanup ran" in stdout, said
    assert b"KeyboardInterrupt" in stderr, said
    assert proc.returncode == 128 + signal.SIGINT, said
    meta = json.loads((out / "report.json").read_text())["run"]["meta"]
    assert meta["status"] == "interrupted", (meta, said)


@pytest.mark.parametrize("args, message", [
    (["profile", "missing.py"], "dldoctor: can't open file 'missing.py': no such file\n"),
    (["profile", "."], "dldoctor: '.' is a directory, not a Python script"),
    (["profile", "-m", "no_such_mod_xyz"], "dldoctor: no module named 'no_such_mod_xyz'\n"),
    (["report", "nothing.json"], "dldoctor: no such report: nothing.json\n"),
])
def test_bad_input_one_line_error_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    got = run_cli(args, cwd=tmp_path)
    assert got.returncode == 2
    err = got.stderr.decode()
    assert err.count("\n") == 1 and "Traceback" not in err
    if "directory" not in message:
        assert err == message
    else:
        assert "is a directory" in err
    assert not (tmp_path / "reports").exists()


def test_unknown_option_exit_2(tmp_path: Path) -> None:
    got = run_cli(["profile", "--bogus", "x.py"], cwd=tmp_path)
    assert got.returncode == 2 and b"No such option" in got.stderr


def test_syntax_error_reported_like_python(write_script, tmp_path: Path) -> None:
    script = write_script("bad.py", "x = (1,\nprint(x)\n")
    expected = run_plain(script)
    got = run_cli(["profile", str(script)], cwd=tmp_path)
    assert got.returncode == expected.returncode == 1
    assert got.stderr.decode().startswith(expected.stderr.decode())
    assert got.stderr.decode().endswith("dldoctor: the target has a syntax error; "
                                        "nothing was profiled\n")
    assert not (tmp_path / "reports").exists()


def test_unwritable_out_dir(write_script, tmp_path: Path) -> None:
    script = write_script("ok.py", "print('hi')\n")
    blocker = tmp_path / "file"
    blocker.write_text("")
    got = run_cli(["profile", "--out", str(blocker / "sub"), str(script)], cwd=tmp_path)
    assert got.returncode == 2
    assert got.stderr.decode().startswith("dldoctor: cannot write to output directory")
    assert got.stdout == b""  # the target never ran


@pytest.mark.parametrize("content, message", [
    ('{"format": "dldoctor-report", "run": {', "not valid JSON"),
    ('{"some": "other json"}', "not a dldoctor report.json"),
])
def test_report_command_on_corrupt_json(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "report.json"
    path.write_text(content)
    got = run_cli(["report", str(path)], cwd=tmp_path)
    assert got.returncode == 2 and message in got.stderr.decode()
    assert got.stderr.decode().count("\n") == 1
    assert path.read_text() == content  # never lose the user's data


def test_report_command_rerenders_saved_run(write_script, profile, tmp_path: Path) -> None:
    script = write_script("ok.py", "print('hi')\n")
    run = profile(script, options=("-q",))
    (run.out_dir / "report.html").unlink()
    got = run_cli(["report", str(run.out_dir / "report.json")], cwd=tmp_path)
    assert got.returncode == 0
    assert got.stdout.decode().startswith("dldoctor: ok.py  exit 0 (ok)")
    assert (run.out_dir / "report.html").read_text().startswith("<!doctype html>")


def test_default_run_directory(write_script, tmp_path: Path) -> None:
    script = write_script("train.py", "pass\n")
    got = run_cli(["profile", "-q", str(script)], cwd=tmp_path)
    assert got.returncode == 0
    (run_dir,) = (tmp_path / "reports").iterdir()
    assert run_dir.name.startswith("train-")
    assert sorted(p.name for p in run_dir.iterdir()) == ["report.html", "report.json",
                                                         "trace.json"]


def test_python_dash_m_dldoctor_help(tmp_path: Path) -> None:
    got = run_cli(["--help"], cwd=tmp_path)
    assert got.returncode == 0 and b"profile" in got.stdout and b"report" in got.stdout


def test_orphaned_target_stays_idle_when_supervisor_dies(write_script, tmp_path: Path) -> None:
    psutil = pytest.importorskip("psutil")
    script = write_script("sleepy.py", """
        import os, time
        print(os.getpid(), flush=True)
        time.sleep(60)
    """)
    proc = subprocess.Popen([sys.executable, "-m", "dldoctor", "profile", "-q", "--out",
                             str(tmp_path / "o"), str(script)], cwd=tmp_path,
                            stdout=subprocess.PIPE, start_new_session=True)
    assert proc.stdout is not None
    target = psutil.Process(int(proc.stdout.readline()))
    try:
        proc.kill()  # the supervisor dies; the target goes on, as it would under plain python
        proc.wait(timeout=10)
        time.sleep(0.3)
        before = sum(target.cpu_times()[:2])
        time.sleep(1.0)
        used = sum(target.cpu_times()[:2]) - before
        assert used < 0.25, f"orphaned target burnt {used:.2f} s CPU in 1 s"
    finally:
        target.kill()


def test_module_found_through_any_finder(tmp_path: Path) -> None:
    # reference_models is installed (editable installs add a meta-path finder, not a sys.path
    # entry); the target check must find it from any working directory, as python -m does.
    got = run_cli(["profile", "-q", "--out", "r", "-m", "reference_models.numpy_mlp", "--",
                   "--epochs", "1"], cwd=tmp_path)
    assert got.returncode == 0, got.stderr.decode()
    assert b"test accuracy" in got.stdout
