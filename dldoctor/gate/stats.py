"""The gate's statistics: median log ratios with percentile-bootstrap confidence intervals.

Everything works on *oriented* log ratios ``d``: positive means the candidate is worse
(``log(candidate/baseline)`` for lower-is-better metrics, the reverse for higher-is-better).
A regression needs the whole interval above ``log(1 + threshold)``; a pass needs the whole
interval below it; anything else is inconclusive. The RNG is seeded, so a verdict is repeatable."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from dldoctor.gate.model import HIGHER, IMPROVED, INCONCLUSIVE, PASS, REGRESSION

CONFIDENCE = 0.95
RESAMPLES = 4000
# A side that is zero while the other is not gives an infinite ratio; cap it so medians stay finite.
LOG_CAP = math.log(1e6)


@dataclass(frozen=True)
class Estimate:
    """A median oriented log ratio and its confidence interval (``low <= value <= high``)."""

    value: float
    low: float
    high: float
    n: int


def oriented_log_ratios(baseline: Sequence[float], candidate: Sequence[float],
                        better: str) -> np.ndarray:
    """Return per-pair oriented log ratios (positive: candidate worse), capped at ±LOG_CAP."""
    base = np.asarray(baseline, dtype=float)
    cand = np.asarray(candidate, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = np.log(np.maximum(cand, 0.0)) - np.log(np.maximum(base, 0.0))
    ratios[(base <= 0) & (cand <= 0)] = 0.0
    ratios = np.clip(np.nan_to_num(ratios, nan=0.0), -LOG_CAP, LOG_CAP)
    return -ratios if better == HIGHER else ratios


def _interval(statistics: np.ndarray, confidence: float) -> tuple[float, float]:
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(statistics, [tail, 1.0 - tail])
    return float(low), float(high)


def paired_estimate(baseline: Sequence[float], candidate: Sequence[float], better: str,
                    confidence: float = CONFIDENCE, resamples: int = RESAMPLES,
                    seed: int = 0) -> Estimate:
    """Return the median of per-pair oriented log ratios with a bootstrap interval
    (pairs resampled with replacement). ``baseline[i]`` and ``candidate[i]`` form pair i."""
    ratios = oriented_log_ratios(baseline, candidate, better)
    value = float(np.median(ratios))
    if len(ratios) < 2 or np.all(ratios == ratios[0]):
        return Estimate(value, value, value, len(ratios))
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(ratios), size=(resamples, len(ratios)))
    low, high = _interval(np.median(ratios[picks], axis=1), confidence)
    return Estimate(value, low, high, len(ratios))


def unpaired_estimate(baseline: Sequence[float], candidate: Sequence[float], better: str,
                      confidence: float = CONFIDENCE, resamples: int = RESAMPLES,
                      seed: int = 0) -> Estimate:
    """Return the oriented log ratio of the two sides' medians with a bootstrap interval
    (each side resampled on its own). With one sample per side the interval is the point."""
    base = np.asarray(baseline, dtype=float)
    cand = np.asarray(candidate, dtype=float)
    value = float(oriented_log_ratios([np.median(base)], [np.median(cand)], better)[0])
    if len(base) < 2 and len(cand) < 2:
        return Estimate(value, value, value, min(len(base), len(cand)))
    rng = np.random.default_rng(seed)
    base_medians = np.median(base[rng.integers(0, len(base), (resamples, len(base)))], axis=1)
    cand_medians = np.median(cand[rng.integers(0, len(cand), (resamples, len(cand)))], axis=1)
    low, high = _interval(oriented_log_ratios(base_medians, cand_medians, better), confidence)
    return Estimate(value, min(low, value), max(high, value), min(len(base), len(cand)))


def decide(estimate: Estimate, threshold: float) -> str:
    """Return ``regression`` if the whole interval lies above ``log(1+threshold)``,
    ``improved`` if it lies below ``-log(1+threshold)``, ``pass`` if it lies below
    ``log(1+threshold)``, else ``inconclusive``."""
    limit = math.log1p(threshold)
    if estimate.low > limit:
        return REGRESSION
    if estimate.high < -limit:
        return IMPROVED
    if estimate.high < limit:
        return PASS
    return INCONCLUSIVE


def as_ratio(log_ratio: float, better: str) -> float:
    """Return candidate/baseline for an oriented log ratio."""
    return math.exp(-log_ratio if better == HIGHER else log_ratio)
