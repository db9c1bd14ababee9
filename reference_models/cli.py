"""The command line every ``python -m reference_models.<module>`` shares: parse options,
train, print the result (``--json`` for the machine-readable form)."""

from __future__ import annotations

import argparse
import json
import sys

from reference_models import get_model
from reference_models.data import DataError
from reference_models.metrics import device_available
from reference_models.run import SIZES, ModelResult, RunConfig


def build_parser(model: str) -> argparse.ArgumentParser:
    """Return the argument parser for ``python -m`` runs of ``model``."""
    spec = get_model(model)
    parser = argparse.ArgumentParser(prog=spec.module, description=spec.description)
    parser.add_argument("--device", choices=spec.devices, default="cpu")
    parser.add_argument("--epochs", type=int, help="training epochs (default: the model's)")
    parser.add_argument("--batch-size", type=int, help="mini-batch size (default: the model's)")
    parser.add_argument("--threads", type=int, help="worker/BLAS/torch threads")
    parser.add_argument("--seed", type=int, default=0, help="train/test split and init seed")
    parser.add_argument("--size", choices=SIZES, default="small", help="network size preset")
    parser.add_argument("--data-dir", "--data", dest="data_dir", help="MNIST IDX directory")
    parser.add_argument("--subset", type=int, help="training samples to use (naive model)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    return parser


def format_result(result: ModelResult) -> str:
    """Return a short human-readable summary of ``result``, one figure per line."""
    lines = [
        f"model           {result.model} ({result.framework}, {result.device}, {result.size})",
        f"data            {result.dataset}: {result.train_samples} samples, {result.epochs} epochs",
        f"samples/s       {result.samples_per_s:,.0f}",
        f"GFLOP/s         {result.gflops:,.2f}",
        f"share of peak   {result.peak_share:.1%} of {result.peak_gflops:,.1f} GFLOP/s",
        f"peak host mem   {result.peak_host_mb:,.1f} MiB",
        f"test accuracy   {result.test_accuracy:.4f}",
    ]
    if result.peak_device_mb is not None:
        lines.insert(-1, f"peak GPU mem    {result.peak_device_mb:,.1f} MiB")
    lines += [f"{key:<15} {value}" for key, value in result.extra.items()]
    return "\n".join(lines)


def main(model: str, argv: list[str] | None = None) -> None:
    """Parse ``argv``, train ``model`` and print its result; exit 2 on bad input."""
    parser = build_parser(model)
    args = vars(parser.parse_args(argv))
    as_json = args.pop("json")
    config = RunConfig(**args)
    if not device_available(config.device):
        parser.exit(2, f"{parser.prog}: error: device {config.device!r} is not available here\n")
    try:
        result = get_model(model).run(config)
    except DataError as exc:
        parser.exit(2, f"{parser.prog}: error: {exc}\n")
    print(json.dumps(result.to_dict()) if as_json else format_result(result))
    sys.stdout.flush()
