"""Small, deterministic statistics for scores (stdlib only).

The 95 % interval of a mean uses Student's t with n-1 degrees of freedom (the quantile is
computed from the regularised incomplete beta function, so no scipy is needed). A seeded
bootstrap is available for callers that prefer it; it is deterministic for a given seed.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable
from dataclasses import asdict, dataclass

__all__ = ["MeanCI", "mean_ci", "bootstrap_ci", "t_quantile", "t_cdf"]


@dataclass(frozen=True)
class MeanCI:
    n: int
    mean: float | None
    low: float | None
    high: float | None
    std: float | None
    confidence: float = 0.95
    method: str = "t"

    def to_dict(self) -> dict:
        return asdict(self)

    def fmt(self, digits: int = 3) -> str:
        if self.mean is None:
            return "n/a"
        if self.low is None or self.high is None:
            return f"{self.mean:.{digits}f}"
        return f"{self.mean:.{digits}f} [{self.low:.{digits}f}, {self.high:.{digits}f}]"


def _betacf(a: float, b: float, x: float) -> float:
    fpmin = 1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c = 1.0
    d = 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > fpmin else fpmin)
    h = d
    for m in range(1, 400):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > fpmin else fpmin)
        c = 1.0 + aa / c
        c = c if abs(c) > fpmin else fpmin
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > fpmin else fpmin)
        c = 1.0 + aa / c
        c = c if abs(c) > fpmin else fpmin
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-15:
            break
    return h


def _betainc(a: float, b: float, x: float) -> float:
    """Regularised incomplete beta I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    bt = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):
        return bt * _betacf(a, b, x) / a
    return 1.0 - bt * _betacf(b, a, 1.0 - x) / b


def t_cdf(t: float, df: float) -> float:
    """P(T <= t) for Student's t with ``df`` degrees of freedom."""
    if df <= 0:
        raise ValueError("df must be positive")
    x = df / (df + t * t)
    tail = 0.5 * _betainc(df / 2.0, 0.5, x)
    return 1.0 - tail if t >= 0 else tail


def t_quantile(p: float, df: float) -> float:
    """The ``p`` quantile of Student's t (bisection on the CDF; deterministic)."""
    if not 0.0 < p < 1.0:
        raise ValueError("p must be in (0, 1)")
    if p < 0.5:
        return -t_quantile(1.0 - p, df)
    lo, hi = 0.0, 1.0
    while t_cdf(hi, df) < p:
        hi *= 2.0
        if hi > 1e12:
            return hi
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if t_cdf(mid, df) < p:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-12:
            break
    return 0.5 * (lo + hi)


def _clean(values: Iterable[float]) -> list[float]:
    out = []
    for v in values:
        if v is None:
            continue
        f = float(v)
        if math.isfinite(f):
            out.append(f)
    return out


def mean_ci(
    values: Iterable[float], confidence: float = 0.95, clamp: tuple[float, float] | None = (0.0, 1.0)
) -> MeanCI:
    """Mean with a Student-t confidence interval. One value → no interval; none → mean None.

    ``clamp`` bounds the interval (scores live in [0, 1]); pass None for unbounded data."""
    xs = _clean(values)
    n = len(xs)
    if n == 0:
        return MeanCI(0, None, None, None, None, confidence)
    mean = math.fsum(xs) / n
    if n == 1:
        return MeanCI(1, mean, None, None, None, confidence)
    var = math.fsum((x - mean) ** 2 for x in xs) / (n - 1)
    std = math.sqrt(var)
    half = t_quantile(0.5 + confidence / 2.0, n - 1) * std / math.sqrt(n)
    low, high = mean - half, mean + half
    if clamp is not None:
        low, high = max(clamp[0], low), min(clamp[1], high)
    return MeanCI(n, mean, low, high, std, confidence)


def bootstrap_ci(values: Iterable[float], confidence: float = 0.95, resamples: int = 2000, seed: int = 0) -> MeanCI:
    """Percentile bootstrap interval of the mean; deterministic for a given ``seed``."""
    xs = _clean(values)
    n = len(xs)
    if n == 0:
        return MeanCI(0, None, None, None, None, confidence, "bootstrap")
    mean = math.fsum(xs) / n
    if n == 1:
        return MeanCI(1, mean, None, None, None, confidence, "bootstrap")
    rng = random.Random(seed)
    means = sorted(math.fsum(rng.choice(xs) for _ in range(n)) / n for _ in range(resamples))
    alpha = (1.0 - confidence) / 2.0
    lo = means[max(0, int(math.floor(alpha * resamples)))]
    hi = means[min(resamples - 1, int(math.ceil((1.0 - alpha) * resamples)) - 1)]
    std = math.sqrt(math.fsum((x - mean) ** 2 for x in xs) / (n - 1))
    return MeanCI(n, mean, lo, hi, std, confidence, "bootstrap")
