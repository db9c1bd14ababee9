"""Benchmark workload: one bundled reference model's training, fixed work. Prints ELAPSED (the
training loop's own seconds: data loading, evaluation and the GEMM probe are left out) and, for
the torch models, ``STEPS <median> <p99>``: the step periods (from one ``train_step`` call to
the next), which tell a cost every step pays from a rare stall.

    python benchmarks/workloads/reference_model.py MODEL EPOCHS

``threaded-mlp`` trains with one worker per core and skips its one-thread baseline.
"""

import sys
import time

from reference_models import RunConfig, get_model
from reference_models.data import load_dataset
from reference_models.threaded_mlp import cpu_count, fit_threaded, threaded_preset


def _time_steps() -> list[float]:
    """Record the start of every torch ``train_step`` call (the same thin wrapper runs plain
    and profiled)."""
    import reference_models.torch_common as common

    starts: list[float] = []
    step = common.train_step

    def timed(*args, **kwargs):
        starts.append(time.perf_counter())
        return step(*args, **kwargs)

    common.train_step = timed
    return starts


def main(name: str, epochs: int) -> None:
    config = RunConfig(epochs=epochs)
    starts = _time_steps() if name.startswith("torch-") else []
    if name == "threaded-mlp":
        training = fit_threaded(load_dataset(None, config.seed), threaded_preset(config),
                                config.seed, cpu_count())
        seconds = training.seconds
    else:
        seconds = get_model(name).run(config).train_seconds
    print(f"ELAPSED {seconds:.6f}")
    periods = sorted(b - a for a, b in zip(starts, starts[1:]))
    if len(periods) >= 100:
        print(f"STEPS {periods[len(periods) // 2]:.7f} {periods[99 * len(periods) // 100]:.7f}")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
