"""Native stacks (``--native``): py-spy samples the target from outside, C/C++ frames included.

The in-process sampler sees Python frames only: time in ``a @ b`` lands on that line, and what
the line spends it on (which BLAS kernel, torch's ATen op, an OpenMP barrier, ``memcpy``) is not
seen. With ``--native`` the supervisor also starts ``py-spy record --native`` on the target (and,
with ``--subprocesses``, on its DataLoader workers). py-spy unwinds each thread's native stack,
so it pauses the target at every sample (blocking mode; ``--nonblocking`` cannot unwind native
frames): an opt-in deep mode, not the default. py-spy aggregates the samples itself (its
``raw`` format: one line per distinct stack, with a count), so the file stays small however long
the run; ``parse_raw`` turns it into the Run's ``native`` section.

py-spy runs in its own session, so a Ctrl-C at the terminal reaches the target, not py-spy; it
stops by itself when the target exits, and ``stop()`` interrupts it (it then writes what it has)
if it has not within ``STOP_WAIT_S``. Where py-spy is not installed or cannot attach (ptrace
refused), the section says why and the run goes on unchanged."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from dldoctor.collectors.frames import classify, is_bootstrap, is_runpy
from dldoctor.run import DLDOCTOR, USER, NativeFrame, NativeProfile

NATIVE = "native"
# py-spy pauses every thread of the target for each native sample: at 100 Hz that made the
# numpy-mlp reference model 1.60-1.67x slower and a pure-Python loop 1.06-1.18x, at 25 Hz 1.17x
# and 1.01x (benchmarks/overhead.py --native, 7 pairs); 25 Hz ranks the hot native functions
# of a run of a few seconds.
NATIVE_RATE = 25
NATIVE_OFF = "not asked for (--native samples native stacks with py-spy)"
STOP_WAIT_S = 10.0
STACK_CAP = 5_000  # distinct stacks kept (the most sampled); the rest are counted as dropped
_FRAME = re.compile(r"^(.*) \(([^()]*)\)$")
_PYTHON_FILE = re.compile(r"^(.*):(\d+)$")
_THREAD = re.compile(r"^thread \((0x[0-9a-fA-F]+|\d+)\)(?:: (.*))?$")
_PROCESS = re.compile(r'^process (\d+):".*?";(thread \(.*)$')


def find_pyspy() -> str | None:
    """Return the py-spy executable beside this interpreter or on PATH, or None."""
    here = os.path.dirname(sys.executable)
    return shutil.which("py-spy", path=os.pathsep.join([here, os.environ.get("PATH", "")]))


class NativeSampler:
    """One ``py-spy record --native`` process attached to the target."""

    def __init__(self, proc: subprocess.Popen[bytes], output: Path, log: Path, rate: int,
                 root_pid: int) -> None:
        self._proc = proc
        self._output = output
        self._log = log
        self._rate = rate
        self._root_pid = root_pid

    @classmethod
    def start(cls, pid: int, rate: int, pyspy: str | None) -> tuple[NativeSampler | None, str]:
        """Attach py-spy to process ``pid``; return (sampler, "") or (None, why not)."""
        if pyspy is None:
            return None, "py-spy is not installed (pip install py-spy)"
        folder = Path(tempfile.mkdtemp(prefix="dldoctor-native-"))
        output, log = folder / "native.txt", folder / "py-spy.log"
        command = [pyspy, "record", "--pid", str(pid), "--native", "--threads",
                   "--subprocesses", "--full-filenames", "--rate", str(rate), "--format", "raw",
                   "--output", str(output)]
        try:
            with open(log, "wb") as sink:
                proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=sink,
                                        stderr=subprocess.STDOUT, start_new_session=True)
        except OSError as exc:
            shutil.rmtree(folder, ignore_errors=True)
            return None, f"cannot start py-spy: {exc.strerror or exc}"
        return cls(proc, output, log, rate, pid), ""

    def stop(self, wait_s: float = STOP_WAIT_S) -> NativeProfile:
        """Wait for py-spy to finish (it ends with the target), interrupting it after
        ``wait_s``; return the profile, or an unavailable one saying why."""
        try:
            self._proc.wait(timeout=wait_s)
        except subprocess.TimeoutExpired:
            self._proc.send_signal(signal.SIGINT)  # py-spy writes what it has, then exits
            try:
                self._proc.wait(timeout=wait_s)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        try:
            text = self._output.read_text(encoding="utf-8", errors="replace")
        except OSError:
            text = ""
        profile = parse_raw(text, self._rate, self._root_pid) if text.strip() else \
            NativeProfile(reason=f"py-spy recorded nothing: {self._why()}", rate=self._rate)
        shutil.rmtree(self._output.parent, ignore_errors=True)
        return profile

    def _why(self) -> str:
        try:
            lines = self._log.read_text(errors="replace").strip().splitlines()
        except OSError:
            lines = []
        errors = [line for line in lines if "rror" in line or "ermission" in line]
        return (errors or lines or [f"exit code {self._proc.returncode}"])[-1][:300]


def parse_raw(text: str, rate: int, root_pid: int | None = None,
              stack_cap: int = STACK_CAP) -> NativeProfile:
    """Return the ``NativeProfile`` of py-spy's ``raw`` output (``--threads``, maybe
    ``--subprocesses``): one ``frame;frame;...;frame count`` line per distinct stack, outermost
    first. dldoctor's bootstrap below the target's outermost frame is cropped."""
    frames: dict[tuple[str, str, int], int] = {}
    threads: dict[tuple[str, str], int] = {}  # (process, thread id) -> index
    names: dict[int, str] = {}
    counts: Counter[tuple[int, tuple[int, ...]]] = Counter()
    for line in text.splitlines():
        head, _, count = line.rstrip().rpartition(" ")
        if not head or not count.isdigit():
            continue
        process, tid, name, parts = _thread_of(head, root_pid)
        stack = tuple(frames.setdefault(frame.key, len(frames))
                      for frame in _crop([_parse_frame(part) for part in parts]))
        if stack:
            thread = threads.setdefault((process, tid), len(threads))
            if name or thread not in names:  # py-spy names a thread once Python has
                names[thread] = process + (name or f"thread {tid}")
            counts[(thread, stack)] += int(count)
    kept = counts.most_common(stack_cap)
    stacks: dict[tuple[int, ...], int] = {}
    rows = [[thread, stacks.setdefault(stack, len(stacks)), n] for (thread, stack), n in kept]
    return NativeProfile(
        available=True, rate=rate,
        frames=[NativeFrame(function, file, line, _kind(file))
                for function, file, line in frames],
        stacks=[list(stack) for stack in stacks], threads=[names[i] for i in range(len(names))],
        counts=rows,
        dropped=sum(counts.values()) - sum(n for _key, n in kept))


def _thread_of(head: str, root_pid: int | None) -> tuple[str, str, str, list[str]]:
    """Return the stack's process label ("" for the target itself, else "pid 12: "), thread
    id, thread name ("" when py-spy gave none) and its frames. The process entry quotes the
    command line, which may hold ``;`` itself (dldoctor's own ``-c`` bootstrap does)."""
    process = ""
    if match := _PROCESS.match(head):
        if root_pid is None or int(match.group(1)) != root_pid:
            process = f"pid {match.group(1)}: "
        head = match.group(2)
    parts = head.split(";")
    tid, name = "?", ""
    if parts and (match := _THREAD.match(parts[0])):
        tid, name = match.group(1), match.group(2) or ""
        parts = parts[1:]
    return process, tid, name, parts


@dataclass(frozen=True)
class _Frame:
    """One ``function (file:line)`` or ``function (library)`` entry of a py-spy stack."""

    function: str
    file: str
    line: int
    python: bool  # a Python frame: py-spy gave its line, in a .py file or a <frozen ...> one

    @property
    def key(self) -> tuple[str, str, int]:
        return self.function, self.file, self.line


def _parse_frame(part: str) -> _Frame:
    match = _FRAME.match(part)
    function, where = (match.group(1), match.group(2)) if match else (part, "?")
    file = _PYTHON_FILE.match(where)
    if file is None:
        return _Frame(function, where, 0, False)
    return _Frame(function, file.group(1), int(file.group(2)), _is_python(file.group(1)))


def _crop(frames: list[_Frame]) -> list[_Frame]:
    """Return the frames from the program's outermost Python frame on, or nothing for a stack
    of dldoctor's own. The interpreter's native frames and dldoctor's bootstrap (``-c`` code,
    dldoctor, runpy) below the program go. The program's first frame is the first Python frame
    that is not bootstrap; it is the program's if the frame that called it is where the
    program is entered (the child's ``_run_script``, runpy, a ``-c`` string: a spawned worker)
    or if nothing of dldoctor's called it (a thread). A first frame in frozen importlib is the
    interpreter's start-up or the bootstrap's own imports (unless runpy imports a ``-m``
    package). Called from anywhere else in dldoctor (its threads, its work at exit), or
    running dldoctor's code and none of the user's (its start-up imports under the ``-c``
    string), the stack is dldoctor's."""
    caller: _Frame | None = None
    for index, frame in enumerate(frames):
        if not frame.python:
            continue
        if not is_bootstrap(frame.file):
            if caller is not None and not _is_entry(caller) or \
                    frame.file.startswith("<frozen") and not (caller and is_runpy(caller.file)):
                return []  # dldoctor's, or the interpreter's start-up and bootstrap imports
            kinds = {classify(f.file) for f in frames[index:] if f.python}
            return [] if DLDOCTOR in kinds and USER not in kinds else frames[index:]
        caller = frame
    return []


def _is_entry(frame: _Frame) -> bool:
    """True for the bootstrap frames that run the program's own code."""
    return frame.file == "<string>" or is_runpy(frame.file) or \
        (frame.function == "_run_script" and
         frame.file.endswith(os.sep + os.path.join("runner", "child.py")))


def _is_python(file: str) -> bool:
    return file.endswith(".py") or file.startswith("<")


def _kind(file: str) -> str:
    """``native`` for a frame of compiled code (its shared library, or its C source file where
    debug information names one), else where the Python file lives (user/library/dldoctor)."""
    return classify(file) if _is_python(file) else NATIVE
