"""``Distribution``'s one rule and ``pool``: what every loader, evaluation and bound relies on."""

from __future__ import annotations

import numpy as np
import pytest

from valuemulch.errors import DataError
from valuemulch.types import SUM_TOLERANCE, Distribution, Question, check_distribution, pool

Q = Question("q1", "Do you favor it?", ("Favor", "Oppose", "Refused"))


def test_a_valid_distribution_keeps_its_numbers() -> None:
    values = np.array([0.1, 0.7, 0.2]) + np.array([1e-9, -1e-9, 0.0])
    d = Distribution(values, Q)
    assert d.probs.dtype == np.float64 and d.probs.tobytes() == values.tobytes() and not d.renormalised
    assert len(Distribution([0.5, 0.5], 2)) == 2


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([0.5, 0.5], "3 values, one per option"),
        ([0.5, 0.5, float("nan")], "finite numbers"),
        ([0.6, 0.6, -0.2], "non-negative mass"),
        ([0.5, 0.5, 0.5], "values summing to 1"),
        ([0.3, 0.3, 0.3], "values summing to 1"),
        (["a", "b", "c"], "a list of numbers"),
    ],
)
def test_the_one_rule_rejects(values: list[object], expected: str) -> None:
    with pytest.raises(DataError, match=expected):
        Distribution(values, Q, where="test")  # type: ignore[arg-type]


def test_the_sum_tolerance_is_the_shared_one() -> None:
    Distribution([0.5, 0.5 + 0.9 * SUM_TOLERANCE, 0.0], Q)
    with pytest.raises(DataError, match="summing to 1"):
        Distribution([0.5, 0.5 + 1.1 * SUM_TOLERANCE, 0.0], Q)


def test_renormalisation_is_asked_for_and_counted() -> None:
    d = Distribution([2.0, 1.0, 1.0], Q, renormalise=True)
    np.testing.assert_array_equal(d.probs, [0.5, 0.25, 0.25])
    assert d.renormalised
    assert not Distribution([0.5, 0.25, 0.25], Q, renormalise=True).renormalised
    with pytest.raises(DataError, match="some positive mass"):
        Distribution([0.0, 0.0, 0.0], Q, renormalise=True)
    with pytest.raises(DataError, match="non-negative mass"):
        Distribution([2.0, -1.0, 1.0], Q, renormalise=True)


def test_check_distribution_is_the_rule_with_renormalisation() -> None:
    values, fixed = check_distribution([30, 50, 20], 3, "loader")
    np.testing.assert_array_equal(values, np.array([30, 50, 20]) / 100)
    assert fixed


def test_pool_weights_groups_by_respondents() -> None:
    a, b = np.array([1.0, 0.0]), np.array([0.0, 1.0])
    np.testing.assert_allclose(pool([a, b], [300.0, 100.0]), [0.75, 0.25])
    np.testing.assert_allclose(pool([a, b], [3.0, None]), [0.75, 0.25])  # no count weighs 1, as the count 1 would
    np.testing.assert_allclose(pool([a, b], [0.0, 1.0]), [0.5, 0.5])  # a zero count too
    np.testing.assert_allclose(pool([a, b]), [0.5, 0.5])
    with pytest.raises(DataError, match="at least one distribution"):
        pool([])
