"""``dldoctor models list`` / ``bench`` / ``compare`` through the real CLI in subprocesses, plus
exact-output unit tests of the table and the HTML escaping."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from test_reference_models import write_mnist

from dldoctor.bench.compare import render_html, run_compare, to_document
from dldoctor.bench.table import Entry, format_table
from reference_models import MODELS, ModelResult, RunConfig, get_model
from reference_models.metrics import cuda_available

REPO = Path(__file__).resolve().parents[1]


def dldoctor(*args: str, cwd: Path = REPO, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run ``python -m dldoctor ARGS`` in ``cwd`` (repository importable); return the process."""
    path = os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "PYTHONPATH": path}
    return subprocess.run([sys.executable, "-m", "dldoctor", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout, check=False)


def fake_result(**changes: object) -> ModelResult:
    """Return a ModelResult with round figures for exact-output tests."""
    fields = dict(
        model="numpy-mlp", framework="numpy", device="cpu", size="small", dataset="digits",
        epochs=2, batch_size=128, threads=2, train_samples=2694, train_seconds=0.5,
        samples_per_s=5388.0, gflops=12.5, peak_gflops=250.0, peak_share=0.05,
        peak_host_mb=140.4, peak_device_mb=None, test_accuracy=0.9711, final_loss=0.1,
    )
    return ModelResult(**{**fields, **changes})


def test_models_list_names_frameworks_and_devices() -> None:
    proc = dldoctor("models", "list")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].split()[:3] == ["model", "framework", "devices"]
    for spec in MODELS:
        line = next(ln for ln in lines if ln.split()[0] == spec.name)
        assert line.split()[1] == spec.framework
        assert line.split()[2] == ",".join(spec.available_devices())


def test_bench_prints_figures_and_writes_json(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    proc = dldoctor("bench", "numpy-mlp", "--epochs", "2", "--json", str(out))
    assert proc.returncode == 0, proc.stderr
    for label in ("samples/s", "GFLOP/s", "% peak", "peak MiB", "accuracy", "matmul peak"):
        assert label in proc.stdout
    result = json.loads(out.read_text())
    assert result["model"] == "numpy-mlp" and result["epochs"] == 2
    assert result["train_samples"] == 2 * 1347 and result["samples_per_s"] > 0
    assert result["peak_share"] > 0 and result["test_accuracy"] > 0.5


def test_bench_reads_mnist_idx_dir(tmp_path: Path) -> None:
    write_mnist(tmp_path / "mnist", gz=True)
    out = tmp_path / "r.json"
    proc = dldoctor("bench", "threaded-mlp", "--data", str(tmp_path / "mnist"), "--epochs", "1",
                    "--threads", "2", "--json", str(out))
    assert proc.returncode == 0, proc.stderr
    result = json.loads(out.read_text())
    assert result["dataset"] == "mnist" and result["extra"]["workers"] == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["bench", "nope"], "dldoctor: unknown model 'nope' (known: numpy-mlp,"),
        (["bench", "numpy-mlp", "--data", "/nonexistent/mnist"],
         "dldoctor: /nonexistent/mnist: not a directory"),
        (["bench", "numpy-mlp", "--device", "cuda"], "dldoctor: numpy-mlp runs on cpu only"),
        (["compare", "--models", "numpy-mlp,nope"], "dldoctor: unknown model 'nope'"),
        (["compare", "--devices", "cpu,tpu"], "dldoctor: unknown device tpu; use cpu and/or cuda"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args: list[str], message: str) -> None:
    proc = dldoctor(*args)
    assert proc.returncode == 2
    assert proc.stderr.startswith(message) and proc.stderr.count("\n") == 1


def test_bench_bad_idx_file_is_a_usage_error(tmp_path: Path) -> None:
    write_mnist(tmp_path)
    labels = tmp_path / "t10k-labels-idx1-ubyte"
    labels.write_bytes(labels.read_bytes()[:-3])
    proc = dldoctor("bench", "numpy-mlp", "--data", str(tmp_path))
    assert proc.returncode == 2
    assert proc.stderr.startswith(f"dldoctor: {labels}: truncated or oversized IDX data")


@pytest.mark.skipif(cuda_available(), reason="this machine has CUDA")
def test_bench_cuda_absent_is_a_usage_error() -> None:
    if not get_model("torch-mlp").installed():
        pytest.skip("torch is not installed")
    proc = dldoctor("bench", "torch-mlp", "--device", "cuda")
    assert proc.returncode == 2
    assert proc.stderr == "dldoctor: cuda is not available on this machine\n"


def test_bench_profile_runs_the_model_under_dldoctor(tmp_path: Path) -> None:
    if dldoctor("profile", "--help").returncode != 0:
        pytest.skip("`dldoctor profile` is not available yet")
    proc = dldoctor("bench", "numpy-mlp", "--epochs", "1", "--profile", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "test accuracy" in proc.stdout  # the model's own output passes through
    reports = list((tmp_path / "reports").glob("*/report.json"))
    assert len(reports) == 1


def test_compare_reports_absent_cuda_as_skipped(tmp_path: Path) -> None:
    out = tmp_path / "cmp"
    proc = dldoctor("compare", "--models", "numpy-mlp,torch-mlp", "--devices", "cpu,cuda",
                    "--epochs", "1", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    document = json.loads((out / "compare.json").read_text())
    status = {(e["model"], e["device"]): e["status"] for e in document["entries"]}
    torch_cpu = "ok" if get_model("torch-mlp").installed() else "skipped"
    assert status == {
        ("numpy-mlp", "cpu"): "ok", ("numpy-mlp", "cuda"): "skipped",
        ("torch-mlp", "cpu"): torch_cpu,
        ("torch-mlp", "cuda"): "ok" if cuda_available() else "skipped",
    }
    numpy_cpu = document["entries"][0]["result"]
    assert numpy_cpu["epochs"] == 1 and numpy_cpu["samples_per_s"] > 0
    html = (out / "compare.html").read_text()
    assert "skipped" in html and "<script src" not in html and "http" not in html.lower()
    assert "compare.json" in proc.stdout and "samples/s" in proc.stdout


@pytest.mark.gpu
@pytest.mark.slow
@pytest.mark.parametrize("model", ["torch-mlp", "torch-cnn"])
def test_bench_large_on_cuda_reports_share_of_peak(tmp_path: Path, model: str) -> None:
    if not cuda_available():
        pytest.skip("no CUDA device")
    out = tmp_path / "r.json"
    proc = dldoctor("bench", model, "--device", "cuda", "--size", "large", "--epochs", "2",
                    "--json", str(out), timeout=600)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(out.read_text())
    assert result["device"] == "cuda" and result["extra"]["precision"] in ("bfloat16", "float32")
    assert result["peak_share"] > 0 and result["peak_device_mb"] > 0


def test_table_exact_output() -> None:
    entries = [Entry("numpy-mlp", "cpu", "ok", fake_result(extra={"workers": 2})),
               Entry("torch-mlp", "cuda", "skipped", reason="cuda is not available")]
    assert format_table(entries).splitlines() == [
        "model      device  status   samples/s  GFLOP/s  % peak  peak MiB  accuracy  notes",
        "numpy-mlp  cpu     ok           5,388    12.50    5.0%       140    0.9711  workers=2",
        "torch-mlp  cuda    skipped          -        -       -         -         -  "
        "cuda is not available",
    ]


def test_html_escapes_user_strings() -> None:
    entries = [Entry("numpy-mlp", "cpu", "failed", reason="<script>alert(1)</script>")]
    html = render_html(to_document(entries, RunConfig()), entries)
    assert "<script>alert" not in html and "&lt;script&gt;alert(1)" in html


def test_run_compare_records_failures_and_keeps_going() -> None:
    def runner(spec, config):
        if spec.name == "numpy-mlp":
            raise RuntimeError("boom")
        return fake_result(model=spec.name)

    models = [get_model("numpy-mlp"), get_model("threaded-mlp")]
    entries = list(run_compare(models, ["cpu"], RunConfig(), runner=runner))
    assert [(e.model, e.status, e.reason) for e in entries] == [
        ("numpy-mlp", "failed", "boom"), ("threaded-mlp", "ok", "")]
