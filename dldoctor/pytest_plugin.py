"""pytest plugin (entry point ``pytest11``): dldoctor's regression gate inside pytest.

Mark a test, or use the fixture around the part that matters::

    @pytest.mark.dldoctor_gate
    def test_train_step():
        train_step()

    def test_inference(dldoctor_gate):
        model = build()
        with dldoctor_gate.measure():
            model.predict(batch)
        dldoctor_gate.record("throughput", 812.5)   # your own metric, optional

The body's allocations (tracemalloc peak and retained bytes) are compared with the baseline file
(``--dldoctor-baseline``, default ``dldoctor-baseline.json`` in the rootdir) and the test fails
when one grows past its threshold. Times are gated only when the marker names a threshold:
``@pytest.mark.dldoctor_gate(thresholds={"wall_s": 0.5})``. Record the baseline with
``pytest --dldoctor-save-baseline``.

This module is imported by every pytest run where dldoctor is installed: it imports nothing
heavy at the top, and tests without the marker or fixture are not touched."""

from __future__ import annotations

from collections.abc import Generator
from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from dldoctor.gate.probe import Probe, SuiteBaseline

MARKER = FIXTURE = "dldoctor_gate"
DEFAULT_BASELINE = "dldoctor-baseline.json"
_SUITE = pytest.StashKey["SuiteBaseline"]()


def pytest_addoption(parser: pytest.Parser) -> None:
    """Add the ``--dldoctor-*`` options and the ``dldoctor_baseline`` ini key."""
    group = parser.getgroup("dldoctor", "dldoctor regression gate")
    group.addoption("--dldoctor-baseline", metavar="PATH",
                    help=f"Baseline file of dldoctor_gate tests (default: {DEFAULT_BASELINE} "
                         "in the rootdir, or the dldoctor_baseline ini value).")
    group.addoption("--dldoctor-save-baseline", action="store_true",
                    help="Record the metrics of dldoctor_gate tests into the baseline file "
                         "instead of checking them.")
    parser.addini("dldoctor_baseline", "Baseline file of dldoctor_gate tests, relative to the "
                  "rootdir.", default=DEFAULT_BASELINE)


def pytest_configure(config: pytest.Config) -> None:
    """Register the marker."""
    config.addinivalue_line(
        "markers", f"{MARKER}(thresholds=None): profile the test body (allocations, time) and "
                   "fail when a metric regresses against the dldoctor baseline file")


@pytest.fixture
def dldoctor_gate() -> Probe:
    """Return a Probe: ``with dldoctor_gate.measure(): ...`` gates that block, and
    ``dldoctor_gate.record(name, value)`` adds a metric of your own."""
    from dldoctor.gate.probe import Probe

    return Probe()


def _suite(config: pytest.Config) -> SuiteBaseline:
    if _SUITE not in config.stash:
        from dldoctor.gate.probe import SuiteBaseline

        option = config.getoption("--dldoctor-baseline")
        path = (Path(config.invocation_params.dir) / option if option
                else config.rootpath / str(config.getini("dldoctor_baseline")))
        config.stash[_SUITE] = SuiteBaseline(path, bool(config.getoption(
            "--dldoctor-save-baseline")))
    return config.stash[_SUITE]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, Any, Any]:
    """Measure a marked test's body (or use its fixture's measurements) and fail the test
    when a metric regressed against the baseline."""
    marker = item.get_closest_marker(MARKER)
    fixture = getattr(item, "funcargs", {}).get(FIXTURE)
    if marker is None and fixture is None:
        return (yield)
    from dldoctor.gate.evaluate import parse_fraction
    from dldoctor.gate.model import GateInputError
    from dldoctor.gate.probe import Probe

    body = Probe() if marker is not None else None
    with body.measure() if body is not None else nullcontext():
        result = yield
    probe = fixture if isinstance(fixture, Probe) and fixture.used else body
    if probe is None or not probe.used:
        return result
    try:
        named = (marker.kwargs.get("thresholds") or {}) if marker is not None else {}
        thresholds = {str(k): parse_fraction(str(v), f"{k}={v}") for k, v in named.items()}
        failure = _suite(item.config).check(item.nodeid, probe.measurement(), thresholds)
    except GateInputError as exc:
        pytest.fail(f"dldoctor gate: {exc}", pytrace=False)
    if failure:
        pytest.fail(failure, pytrace=False)
    return result


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Save the baseline in save mode (before the terminal summary is written)."""
    if _SUITE in session.config.stash:
        session.config.stash[_SUITE].finish()


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    """Print what the gate has to say (warnings, saved or missing baselines)."""
    if _SUITE not in config.stash or not config.stash[_SUITE].summary:
        return
    terminalreporter.section("dldoctor gate")
    for line in config.stash[_SUITE].summary:
        terminalreporter.write_line(line)
