import math

import pytest

from suite.stats import chi2_sf, chi_square_uniform, regularized_upper_gamma


def closed_form_sf(x: float, df: int) -> float:
    """Exact chi-square survival functions for small degrees of freedom."""
    if df == 1:
        return math.erfc(math.sqrt(x / 2))
    if df == 2:
        return math.exp(-x / 2)
    if df == 3:
        return math.erfc(math.sqrt(x / 2)) + math.sqrt(2 * x / math.pi) * math.exp(-x / 2)
    if df == 4:
        return math.exp(-x / 2) * (1 + x / 2)
    raise ValueError(df)


@pytest.mark.parametrize("df", [1, 2, 3, 4])
@pytest.mark.parametrize("x", [0.01, 0.5, 1.0, 2.5, 3.0, 4.0, 7.8, 12.0, 16.3, 30.0, 80.0])
def test_chi2_sf_matches_closed_forms(x, df):
    assert chi2_sf(x, df) == pytest.approx(closed_form_sf(x, df), rel=1e-9, abs=1e-300)


@pytest.mark.parametrize(
    ("statistic", "df", "p"),
    [
        (3.841458820694124, 1, 0.05),
        (7.814727903251178, 3, 0.05),
        (16.26623619623813, 3, 0.001),
        (11.344866730144373, 3, 0.01),
        (10.0, 4, 0.04042768199451279),
        (18.307038053275146, 10, 0.05),
    ],
)
def test_chi2_sf_known_critical_values(statistic, df, p):
    assert chi2_sf(statistic, df) == pytest.approx(p, rel=1e-7)


def test_chi2_sf_edges():
    assert chi2_sf(0.0, 3) == 1.0
    assert chi2_sf(1e4, 3) == pytest.approx(0.0, abs=1e-300)
    with pytest.raises(ValueError, match="degrees of freedom"):
        chi2_sf(1.0, 0)
    with pytest.raises(ValueError, match="a must be positive"):
        regularized_upper_gamma(0.0, 1.0)


def test_perfectly_even_counts_are_uniform():
    result = chi_square_uniform([100, 100, 100, 100])
    assert result.statistic == 0.0
    assert result.p_value == 1.0
    assert result.consistent_with_uniform(0.001)


def test_statistic_and_p_value_of_an_uneven_spread():
    result = chi_square_uniform([130, 90, 90, 90])
    assert result.statistic == pytest.approx(12.0)
    assert result.df == 3
    assert result.p_value == pytest.approx(closed_form_sf(12.0, 3))
    assert result.consistent_with_uniform(0.001)


def test_one_silent_replica_is_far_from_uniform():
    result = chi_square_uniform([134, 133, 133, 0])
    assert result.p_value < 1e-20
    assert not result.consistent_with_uniform(0.001)


def test_needs_two_cells_and_observations():
    with pytest.raises(ValueError, match="two cells"):
        chi_square_uniform([5])
    with pytest.raises(ValueError, match="one observation"):
        chi_square_uniform([0, 0])
