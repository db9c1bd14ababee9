"""Benchmark workload: one bundled reference model's training, fixed work. Prints ELAPSED (the
training loop's own seconds: data loading, evaluation and the GEMM probe are left out).

    python benchmarks/workloads/reference_model.py MODEL EPOCHS

``threaded-mlp`` trains with one worker per core and skips its one-thread baseline.
"""

import sys

from reference_models import RunConfig, get_model
from reference_models.data import load_dataset
from reference_models.threaded_mlp import cpu_count, fit_threaded, threaded_preset


def main(name: str, epochs: int) -> None:
    config = RunConfig(epochs=epochs)
    if name == "threaded-mlp":
        training = fit_threaded(load_dataset(None, config.seed), threaded_preset(config),
                                config.seed, cpu_count())
        seconds = training.seconds
    else:
        seconds = get_model(name).run(config).train_seconds
    print(f"ELAPSED {seconds:.6f}")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
