"""Is a results entry what the metrics code wrote? Its scores against its per-query sidecar.

A score edited by hand, or written as a string, would otherwise be kept by a rerun and make ``lmeb
table`` (the means in the main file) and ``lmeb compare`` (the per-query values) disagree. Before the
results store keeps a subset, its scores must be the means of its per-query values as
``lmeb.engine.metrics.evaluate`` computes them (``column_means``), to rounding: the pytrec_eval families are
rounded to 5 digits, so they may differ by half a unit in the last digit (sums can run in another
order); mrr and R_cap are not rounded, so they must agree to 1e-9.
"""

from __future__ import annotations

from lmeb.engine.metrics import MAIN_SCORE, ROUND, column_means, is_rounded
from lmeb.results.dataset_result import DatasetResult, SubsetResult, is_number

ROUNDED_TOLERANCE = 0.5 * 10.0**-ROUND + 1e-9
TOLERANCE = 1e-9


def subset_problem(sub: SubsetResult) -> str | None:
    """Why ``sub``'s scores cannot be trusted (None when they agree with its per-query values)."""
    ids = sub.query_ids
    if not ids:
        return "no per-query values"
    if MAIN_SCORE not in sub.scores:
        return f"{MAIN_SCORE} (the main score) is missing"
    for metric, values in sub.per_query.items():
        if not isinstance(values, list) or len(values) != len(ids):
            return f"the per-query {metric} values do not match its {len(ids)} query ids"
        if not all(v is None or is_number(v) for v in values):
            return f"a per-query {metric} value is not a number"
    means = column_means(ids, sub.per_query, sub.unranked)
    missing = [metric for metric in means if metric not in sub.scores]
    if missing:
        return f"{missing[0]} is missing from its scores.test entry"
    for metric, value in sub.scores.items():
        if metric not in means:
            return f"{metric} has no per-query values"
        tolerance = ROUNDED_TOLERANCE if is_rounded(metric) else TOLERANCE
        if abs(value - means[metric]) > tolerance:
            return f"{metric} is {value} but its per-query values give {means[metric]:.6g}"
    if MAIN_SCORE in sub.scores and sub.main_score != sub.scores[MAIN_SCORE]:
        return f"main_score is {sub.main_score} but {MAIN_SCORE} is {sub.scores[MAIN_SCORE]}"
    return None


def result_problems(result: DatasetResult) -> dict[str, str]:
    """Subset -> why it is not to be kept: what reading found (``DatasetResult.problems``), then the check."""
    out = dict(result.problems)
    for name, sub in result.subsets.items():
        if name not in out and (reason := subset_problem(sub)) is not None:
            out[name] = reason
    return out
