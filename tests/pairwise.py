"""All-pairs test cases: every pair of values of any two parameters appears in some case.

The full product of the animate options (methods x mattes x motions x loops x frame counts
x output kinds x photos: 768 runs) is too slow for the suite; the pairs are covered by
a few dozen. Greedy: each new case is the one of the product covering the most pairs
still uncovered (ties: the first in product order), so the result is deterministic.
"""
from __future__ import annotations

import itertools
from typing import Sequence


def pairs_of(case: Sequence) -> set[tuple]:
    return {(i, case[i], j, case[j]) for i, j in itertools.combinations(range(len(case)), 2)}


def pairwise(values: Sequence[Sequence]) -> list[tuple]:
    """Cases (one value per parameter) covering every pair of values of two parameters."""
    uncovered = set().union(*(pairs_of(c) for c in itertools.product(*values)))
    product = list(itertools.product(*values))
    cases = []
    while uncovered:
        best = max(product, key=lambda c: len(pairs_of(c) & uncovered))
        cases.append(best)
        uncovered -= pairs_of(best)
    return cases
