"""Chi-square goodness of fit, without scipy.

The p-value of Pearson's statistic with k-1 degrees of freedom is the chi-square survival
function, Q(df/2, x/2): the regularised upper incomplete gamma function. It is computed with
the usual pair of expansions (series below a+1, Lentz's continued fraction above), which
converge to double precision for the small degrees of freedom used here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

_EPSILON = 1e-15
_MAX_ITERATIONS = 10_000
_TINY = 1e-300


def _lower_series(a: float, x: float) -> float:
    """P(a, x) by its power series (good for x < a + 1)."""
    term = 1.0 / a
    total = term
    n = a
    for _ in range(_MAX_ITERATIONS):
        n += 1.0
        term *= x / n
        total += term
        if abs(term) < abs(total) * _EPSILON:
            break
    return total * math.exp(-x + a * math.log(x) - math.lgamma(a))


def _upper_fraction(a: float, x: float) -> float:
    """Q(a, x) by its continued fraction (good for x >= a + 1), modified Lentz."""
    b = x + 1.0 - a
    c = 1.0 / _TINY
    d = 1.0 / b
    h = d
    for i in range(1, _MAX_ITERATIONS):
        an = -i * (i - a)
        b += 2.0
        d = an * d + b
        if abs(d) < _TINY:
            d = _TINY
        c = b + an / c
        if abs(c) < _TINY:
            c = _TINY
        d = 1.0 / d
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < _EPSILON:
            break
    return math.exp(-x + a * math.log(x) - math.lgamma(a)) * h


def regularized_upper_gamma(a: float, x: float) -> float:
    """Q(a, x) = Γ(a, x) / Γ(a)."""
    if a <= 0:
        raise ValueError(f"a must be positive, got {a}")
    if x < 0:
        raise ValueError(f"x must be non-negative, got {x}")
    if x == 0:
        return 1.0
    if x < a + 1.0:
        return max(0.0, 1.0 - _lower_series(a, x))
    return min(1.0, _upper_fraction(a, x))


def chi2_sf(statistic: float, df: int) -> float:
    """P(X >= statistic) for X ~ chi-square with `df` degrees of freedom."""
    if df < 1:
        raise ValueError(f"degrees of freedom must be >= 1, got {df}")
    return regularized_upper_gamma(df / 2.0, max(0.0, statistic) / 2.0)


@dataclass(frozen=True)
class ChiSquare:
    """Result of a goodness-of-fit test against equal expected counts."""

    statistic: float
    df: int
    p_value: float
    expected: float
    counts: tuple[int, ...]

    def consistent_with_uniform(self, significance: float) -> bool:
        """True when uniformity is not rejected at `significance` (p >= significance)."""
        return self.p_value >= significance


def chi_square_uniform(counts: Sequence[int]) -> ChiSquare:
    """Pearson's chi-square test of `counts` against a uniform spread over len(counts) cells."""
    if len(counts) < 2:
        raise ValueError("need at least two cells to test a spread")
    total = sum(counts)
    if total <= 0:
        raise ValueError("need at least one observation")
    expected = total / len(counts)
    statistic = sum((count - expected) ** 2 / expected for count in counts)
    df = len(counts) - 1
    return ChiSquare(statistic, df, chi2_sf(statistic, df), expected, tuple(counts))


def binomial_outside(n: int, p: float, low_share: float, high_share: float) -> float:
    """P(X/n < low_share or X/n > high_share) for X ~ Binomial(n, p), summed exactly in log
    space (the load-balancing scenario derives its request count from this)."""
    if n < 1 or not 0.0 < p < 1.0:
        raise ValueError(f"need n >= 1 and 0 < p < 1, got n={n}, p={p}")
    total = 0.0
    for k in range(n + 1):
        share = k / n
        if low_share <= share <= high_share:
            continue
        log_pmf = (
            math.lgamma(n + 1)
            - math.lgamma(k + 1)
            - math.lgamma(n - k + 1)
            + k * math.log(p)
            + (n - k) * math.log1p(-p)
        )
        total += math.exp(log_pmf)
    return min(1.0, total)
