from __future__ import annotations

import math
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from healthscore.scoring import (
    HealthProfile,
    parse_profile,
    round_contributions,
    score_accounts,
)

CONTRACTS = ["Month-to-month", "One year", "Two year"]

MEASURES = {
    "contract": """
      - metric: contract
        weight: {weight}
        category:
          points: {{Month-to-month: 0, One year: 70, Two year: 100}}""",
    "tenure": """
      - metric: tenure
        weight: {weight}
        linear: {{worst: 0, best: 48}}""",
    "days_idle": """
      - metric: days_idle
        weight: {weight}
        thresholds: {{direction: lower_is_better, good: 30, average: 90}}""",
    "active_users": """
      - metric: active_users
        weight: {weight}
        percentile: {{min_peers: 1}}""",
}


def build_profile(
    component_weights: tuple[float, float],
    measure_weights: dict[str, float],
    min_coverage: float = 0.0,
) -> HealthProfile:
    """Build a two-component profile holding the measures named in measure_weights."""
    parts = [f"name: prop\nmin_coverage: {min_coverage}\ncomponents:"]
    groups = (["contract", "tenure"], ["days_idle", "active_users"])
    for index, (weight, names) in enumerate(
        zip(component_weights, groups, strict=True)
    ):
        parts.append(f"  - name: c{index}\n    weight: {weight}\n    measures:")
        parts.extend(
            MEASURES[name].format(weight=measure_weights[name]).strip("\n")
            for name in names
            if name in measure_weights
        )
    return parse_profile("\n".join(parts) + "\n")


maybe_number = st.one_of(
    st.none(), st.floats(min_value=-50, max_value=250, allow_nan=False)
)
rows = st.lists(
    st.tuples(
        st.sampled_from(["A", "B", None]),
        st.one_of(st.none(), st.sampled_from([*CONTRACTS, "Other"])),
        maybe_number,
        maybe_number,
        maybe_number,
    ),
    min_size=1,
    max_size=12,
)
weight = st.integers(min_value=1, max_value=9)
weights = st.fixed_dictionaries(dict.fromkeys(MEASURES, weight))
component_weights = st.tuples(weight, weight)


def build_metrics(data: list[tuple]) -> pd.DataFrame:
    segment, contract, tenure, days_idle, active_users = zip(*data, strict=True)
    return pd.DataFrame(
        {
            "account_id": [f"acc-{i}" for i in range(len(data))],
            "segment": pd.Series(segment, dtype=object),
            "contract": pd.Series(contract, dtype=object),
            "tenure": pd.Series(tenure, dtype=np.float64),
            "days_idle": pd.Series(days_idle, dtype=np.float64),
            "active_users": pd.Series(active_users, dtype=np.float64),
        }
    )


def contributions_by_account(result) -> dict[str, list[float]]:
    grouped = result.measures.groupby("account_id", sort=False)["contribution"]
    return {key: list(values) for key, values in grouped}


@settings(deadline=None, max_examples=60)
@given(rows, component_weights, weights, st.sampled_from([0.0, 0.5, 1.0]))
def test_score_within_0_and_100(data, cweights, mweights, min_coverage):
    profile = build_profile(cweights, mweights, min_coverage)
    result = score_accounts(build_metrics(data), profile)
    scores = result.scores["score"].to_numpy()
    known = ~np.isnan(scores)

    assert (scores[known] >= 0).all()
    assert (scores[known] <= 100).all()
    assert (result.scores["coverage"] <= 1 + 1e-9).all()
    assert set(result.scores.loc[~known, "band"]) <= {"Unknown"}


@settings(deadline=None, max_examples=60)
@given(
    rows,
    component_weights,
    weights,
    st.sampled_from(["tenure", "days_idle", "contract"]),
    st.floats(min_value=0, max_value=100, allow_nan=False),
)
def test_score_better_value_never_lowers(data, cweights, mweights, metric, step):
    profile = build_profile(cweights, mweights)
    metrics = build_metrics(data)
    improved = metrics.copy()
    value = metrics.loc[0, metric]
    if pd.isna(value) or value == "Other":
        return
    if metric == "tenure":
        improved.loc[0, metric] = value + step
    elif metric == "days_idle":
        improved.loc[0, metric] = value - step
    else:
        better = CONTRACTS[min(CONTRACTS.index(value) + int(step) % 3, 2)]
        improved.loc[0, metric] = better

    before = score_accounts(metrics, profile).scores["score"].iloc[0]
    after = score_accounts(improved, profile).scores["score"].iloc[0]

    assert math.isnan(before) == math.isnan(after)
    if not math.isnan(before):
        assert after >= before


@settings(deadline=None, max_examples=60)
@given(rows, component_weights, weights)
def test_score_missing_measure_equals_profile_without_it(data, cweights, mweights):
    metrics = build_metrics(data)
    metrics["tenure"] = np.nan
    full = build_profile(cweights, mweights)
    # Without tenure, commitment keeps only contract's share of its weight.
    contract_share = mweights["contract"] / (mweights["contract"] + mweights["tenure"])
    reduced_weights = {k: v for k, v in mweights.items() if k != "tenure"}
    reduced = build_profile(
        (cweights[0] * contract_share, cweights[1]), reduced_weights
    )

    with_missing = score_accounts(metrics, full).scores["score"].to_numpy()
    without = score_accounts(metrics, reduced).scores["score"].to_numpy()

    np.testing.assert_allclose(with_missing, without, rtol=1e-12, atol=1e-9)


@settings(deadline=None, max_examples=60)
@given(rows, component_weights, weights, st.integers(min_value=0, max_value=3))
def test_contributions_add_up_to_score(data, cweights, mweights, digits):
    profile = build_profile(cweights, mweights)
    result = score_accounts(build_metrics(data), profile)
    scores = result.scores.set_index("account_id")["score"]

    for account_id, parts in contributions_by_account(result).items():
        score = scores[account_id]
        if math.isnan(score):
            assert parts == [0.0] * len(parts)
            continue
        # The engine clamps a sum that rounding took just past 100.
        assert sum(parts) == score or (score == 100.0 and sum(parts) < 100 + 1e-9)
        assert math.fsum(parts) == pytest.approx(score, rel=1e-12, abs=1e-12)
        rounded = round_contributions(parts, score, digits)
        total = sum(Decimal(str(part)) for part in rounded)
        assert total == Decimal(str(round(score, digits)))


@settings(deadline=None, max_examples=30)
@given(rows, component_weights, weights)
def test_score_accounts_is_bit_identical(data, cweights, mweights):
    profile = build_profile(cweights, mweights)
    metrics = build_metrics(data)
    first = score_accounts(metrics, profile)
    second = score_accounts(metrics.copy(), profile)

    assert first.scores["score"].to_numpy().tobytes() == (
        second.scores["score"].to_numpy().tobytes()
    )
    pd.testing.assert_frame_equal(first.scores, second.scores, check_exact=True)
    pd.testing.assert_frame_equal(first.measures, second.measures, check_exact=True)
    pd.testing.assert_frame_equal(first.components, second.components, check_exact=True)


@settings(deadline=None, max_examples=30)
@given(rows, component_weights, weights, st.randoms(use_true_random=False))
def test_score_independent_of_row_order(data, cweights, mweights, random):
    profile = build_profile(cweights, mweights)
    metrics = build_metrics(data)
    order = list(range(len(metrics)))
    random.shuffle(order)

    straight = score_accounts(metrics, profile).scores.set_index("account_id")
    shuffled = score_accounts(metrics.iloc[order], profile).scores
    shuffled = shuffled.set_index("account_id").loc[straight.index]

    assert straight["score"].to_numpy().tobytes() == (
        shuffled["score"].to_numpy().tobytes()
    )
