from __future__ import annotations

import math
import time

import numpy as np
import pandas as pd
import pytest

from healthscore.exceptions import InputDataError
from healthscore.scoring import parse_profile, score_accounts
from tests.scoring.profiles import HAND_PROFILE, hand_metrics


def _single_measure(scheme: str, *, min_coverage: float = 0.5) -> str:
    return f"""
name: single
min_coverage: {min_coverage}
components:
  - name: only
    weight: 1
    measures:
      - metric: value
        {scheme}
"""


def _points(result, account_id: str, measure: str) -> float:
    rows = result.measures
    row = rows[(rows.account_id == account_id) & (rows.measure == measure)]
    return float(row["points"].iloc[0])


def _note(result, account_id: str, measure: str):
    rows = result.measures
    row = rows[(rows.account_id == account_id) & (rows.measure == measure)]
    return row["note"].iloc[0]


def test_score_accounts_hand_calculation():
    result = score_accounts(hand_metrics(), parse_profile(HAND_PROFILE))
    scores = result.scores.set_index("account_id")

    assert scores.loc["a1", "score"] == pytest.approx(
        0.45 * 100 + 0.15 * 50 + 0.2 * 100 + 0.2 * 100
    )
    assert scores.loc["a2", "score"] == pytest.approx(
        0.45 * 70 + 0.15 * 100 + 0.2 * 60 + 0.2 * 25
    )
    assert scores.loc["a3", "score"] == pytest.approx(
        (0.45 * 0 + 0.2 * 0 + 0.2 * 25) / (0.45 + 0.2 + 0.2)
    )
    assert list(scores["band"]) == ["Good", "Average", "Poor"]
    assert list(scores["coverage"]) == pytest.approx([1.0, 1.0, 0.45 + 0.2 + 0.2])


def test_score_accounts_hand_component_scores():
    result = score_accounts(hand_metrics(), parse_profile(HAND_PROFILE))
    scores = result.scores.set_index("account_id")

    assert list(scores["commitment"]) == pytest.approx(
        [(3 * 100 + 1 * 50) / 4, (3 * 70 + 1 * 100) / 4, 0.0]
    )
    assert list(scores["engagement"]) == pytest.approx(
        [(100 + 100) / 2, (60 + 25) / 2, (0 + 25) / 2]
    )
    assert list(scores["weakest_component"]) == [
        "commitment",
        "engagement",
        "commitment",
    ]


def test_score_accounts_hand_measure_rows():
    result = score_accounts(hand_metrics(), parse_profile(HAND_PROFILE))
    a3 = result.measures[result.measures.account_id == "a3"].set_index("measure")

    assert list(a3.index) == ["contract", "tenure", "days_idle", "active_users"]
    assert list(a3["weight"]) == pytest.approx([0.45, 0.15, 0.2, 0.2])
    assert list(a3["effective_weight"]) == pytest.approx(
        [0.45 / 0.85, 0.0, 0.2 / 0.85, 0.2 / 0.85]
    )
    assert list(a3["contribution"]) == pytest.approx([0.0, 0.0, 0.0, 25 * 0.2 / 0.85])
    assert a3.loc["tenure", "note"] == "missing"
    assert a3.loc["contract", "note"] is None
    assert a3.loc["contract", "text_value"] == "Month-to-month"
    assert a3.loc["days_idle", "number_value"] == 200.0
    assert math.isnan(a3.loc["tenure", "points"])


def test_score_accounts_hand_component_rows():
    result = score_accounts(hand_metrics(), parse_profile(HAND_PROFILE))
    a3 = result.components[result.components.account_id == "a3"]

    assert list(a3["component"]) == ["commitment", "engagement"]
    assert list(a3["weight"]) == pytest.approx([0.6, 0.4])
    assert list(a3["effective_weight"]) == pytest.approx([0.45 / 0.85, 0.4 / 0.85])
    assert list(a3["contribution"]) == pytest.approx([0.0, 25 * 0.2 / 0.85])
    assert list(a3["score"]) == pytest.approx([0.0, 12.5])


def test_score_accounts_column_order():
    result = score_accounts(hand_metrics(), parse_profile(HAND_PROFILE))

    assert list(result.scores.columns) == [
        "account_id",
        "score",
        "band",
        "coverage",
        "weakest_component",
        "commitment",
        "engagement",
    ]
    assert list(result.measures.columns) == [
        "account_id",
        "component",
        "measure",
        "metric",
        "number_value",
        "text_value",
        "points",
        "weight",
        "effective_weight",
        "contribution",
        "note",
    ]


def test_score_accounts_below_min_coverage_is_unknown():
    profile = parse_profile(
        HAND_PROFILE.replace("min_coverage: 0.3", "min_coverage: 0.9")
    )
    result = score_accounts(hand_metrics(), profile)
    a3 = result.scores.set_index("account_id").loc["a3"]
    a3_measures = result.measures[result.measures.account_id == "a3"]

    assert math.isnan(a3["score"])
    assert a3["band"] == "Unknown"
    assert a3["coverage"] == pytest.approx(0.85)
    assert (a3_measures["contribution"] == 0).all()
    assert (a3_measures["effective_weight"] == 0).all()
    assert a3["engagement"] == pytest.approx(12.5)


def test_score_accounts_full_coverage_meets_min_coverage_one():
    profile = parse_profile(
        HAND_PROFILE.replace("min_coverage: 0.3", "min_coverage: 1")
    )
    result = score_accounts(hand_metrics(), profile)

    assert list(result.scores["band"]) == ["Good", "Average", "Unknown"]


def test_score_accounts_no_data_is_unknown():
    profile = parse_profile(
        HAND_PROFILE.replace("min_coverage: 0.3", "min_coverage: 0")
    )
    metrics = pd.DataFrame({"account_id": ["x"], "segment": [None]})
    result = score_accounts(metrics, profile)

    assert math.isnan(result.scores["score"].iloc[0])
    assert result.scores["band"].iloc[0] == "Unknown"
    assert result.scores["coverage"].iloc[0] == 0.0
    assert result.scores["weakest_component"].iloc[0] is None
    assert list(result.measures["note"]) == ["missing"] * 4


def test_score_accounts_absent_metric_column_counts_as_missing():
    metrics = hand_metrics().drop(columns=["days_idle"])
    result = score_accounts(metrics, parse_profile(HAND_PROFILE))
    scores = result.scores.set_index("account_id")

    assert _note(result, "a1", "days_idle") == "missing"
    assert scores.loc["a1", "score"] == pytest.approx(
        (0.45 * 100 + 0.15 * 50 + 0.2 * 100) / 0.8
    )


def test_score_accounts_empty_metrics_table():
    metrics = hand_metrics().iloc[0:0]
    result = score_accounts(metrics, parse_profile(HAND_PROFILE))

    assert len(result.scores) == 0
    assert len(result.measures) == 0
    assert "commitment" in result.scores.columns


def test_score_accounts_keeps_input_row_order():
    metrics = hand_metrics().iloc[[2, 0, 1]]
    result = score_accounts(metrics, parse_profile(HAND_PROFILE))

    assert list(result.scores["account_id"]) == ["a3", "a1", "a2"]
    assert list(result.components["account_id"]) == ["a3", "a3", "a1", "a1", "a2", "a2"]


def test_score_accounts_applies_to_segments():
    profile = parse_profile(HAND_PROFILE + "applies_to: {segments: [B, C]}\n")
    metrics = hand_metrics()
    metrics["segment"] = ["B", "A", "C"]
    result = score_accounts(metrics, profile)

    assert list(result.scores["account_id"]) == ["a1", "a3"]
    assert set(result.measures["account_id"]) == {"a1", "a3"}


def test_score_accounts_missing_account_id_column():
    metrics = hand_metrics().drop(columns=["account_id"])

    with pytest.raises(InputDataError, match="no 'account_id' column"):
        score_accounts(metrics, parse_profile(HAND_PROFILE))


def test_score_accounts_repeated_account_id():
    metrics = pd.concat([hand_metrics(), hand_metrics().iloc[[1]]])

    with pytest.raises(InputDataError, match=r"more than once.*\['a2'\]"):
        score_accounts(metrics, parse_profile(HAND_PROFILE))


def test_score_accounts_null_account_id():
    metrics = hand_metrics()
    metrics["account_id"] = ["a1", None, "a3"]

    with pytest.raises(InputDataError, match="1 metrics rows have no account_id"):
        score_accounts(metrics, parse_profile(HAND_PROFILE))


def test_category_unlisted_value_without_other():
    profile = parse_profile(_single_measure("category: {points: {a: 10, b: 90}}"))
    metrics = pd.DataFrame({"account_id": ["x", "y"], "value": ["b", "zzz"]})
    result = score_accounts(metrics, profile)

    assert _points(result, "x", "value") == 90.0
    assert math.isnan(_points(result, "y", "value"))
    assert _note(result, "y", "value") == "value 'zzz' not in category map"


def test_category_unlisted_value_with_other():
    scheme = "category: {points: {a: 10, b: 90}, other: 50}"
    metrics = pd.DataFrame({"account_id": ["x", "y"], "value": ["b", "zzz"]})
    result = score_accounts(metrics, parse_profile(_single_measure(scheme)))

    assert _points(result, "y", "value") == 50.0
    assert _note(result, "y", "value") is None


def test_category_matches_booleans_and_yes_no():
    scheme = "category: {points: {true: 100, false: 0, Yes: 80, No: 20}}"
    values = pd.Series([True, False, "Yes", "No"], dtype=object)
    metrics = pd.DataFrame({"account_id": list("abcd"), "value": values})
    result = score_accounts(metrics, parse_profile(_single_measure(scheme)))

    assert list(result.measures["points"]) == [100.0, 0.0, 80.0, 20.0]
    assert list(result.measures["text_value"]) == ["true", "false", "Yes", "No"]


def test_category_matches_boolean_column():
    scheme = "category: {points: {true: 100, false: 0}}"
    metrics = pd.DataFrame({"account_id": ["a", "b"], "value": [True, False]})
    result = score_accounts(metrics, parse_profile(_single_measure(scheme)))

    assert list(result.measures["points"]) == [100.0, 0.0]


def test_category_matches_whole_numbers():
    scheme = "category: {points: {1: 10, 2: 90}}"
    metrics = pd.DataFrame({"account_id": ["a", "b"], "value": [1.0, 2.0]})
    result = score_accounts(metrics, parse_profile(_single_measure(scheme)))

    assert list(result.measures["points"]) == [10.0, 90.0]


def test_linear_clamps_and_reverses():
    profile = parse_profile(_single_measure("linear: {worst: 100, best: 20}"))
    metrics = pd.DataFrame(
        {"account_id": list("abcd"), "value": [0.0, 20.0, 60.0, 500.0]}
    )
    result = score_accounts(metrics, profile)

    assert list(result.measures["points"]) == [
        100.0,
        100.0,
        100 * (60 - 100) / (20 - 100),
        0.0,
    ]


def test_thresholds_higher_is_better_boundaries():
    scheme = (
        "thresholds: {good: 10, average: 5, points: {good: 90, average: 50, poor: 5}}"
    )
    metrics = pd.DataFrame(
        {"account_id": list("abcde"), "value": [10.0, 9.9, 5.0, 4.9, -1.0]}
    )
    result = score_accounts(metrics, parse_profile(_single_measure(scheme)))

    assert list(result.measures["points"]) == [90.0, 50.0, 50.0, 5.0, 5.0]


def test_thresholds_lower_is_better_boundaries():
    scheme = "thresholds: {direction: lower_is_better, good: 30, average: 90}"
    metrics = pd.DataFrame(
        {"account_id": list("abcd"), "value": [30.0, 30.1, 90.0, 90.1]}
    )
    result = score_accounts(metrics, parse_profile(_single_measure(scheme)))

    assert list(result.measures["points"]) == [100.0, 60.0, 60.0, 0.0]


def test_numeric_scheme_parses_text_numbers():
    profile = parse_profile(_single_measure("linear: {worst: 0, best: 10}"))
    values = pd.Series(["5", "abc", None], dtype=object)
    metrics = pd.DataFrame({"account_id": list("abc"), "value": values})
    result = score_accounts(metrics, profile)

    assert _points(result, "a", "value") == 50.0
    assert math.isnan(_points(result, "b", "value"))
    assert _note(result, "b", "value") == "value 'abc' is not a number"
    assert _note(result, "c", "value") == "missing"


def test_percentile_mid_rank_with_ties():
    profile = parse_profile(_single_measure("percentile: {min_peers: 1}"))
    metrics = pd.DataFrame(
        {"account_id": list("abcde"), "value": [1.0, 2.0, 2.0, 3.0, 10.0]}
    )
    result = score_accounts(metrics, profile)

    assert list(result.measures["points"]) == [
        100 * (1 - 1) / 4,
        100 * (2.5 - 1) / 4,
        100 * (2.5 - 1) / 4,
        100 * (4 - 1) / 4,
        100 * (5 - 1) / 4,
    ]


def test_percentile_lower_is_better():
    scheme = "percentile: {min_peers: 1, direction: lower_is_better}"
    metrics = pd.DataFrame({"account_id": list("abc"), "value": [1.0, 5.0, 9.0]})
    result = score_accounts(metrics, parse_profile(_single_measure(scheme)))

    assert list(result.measures["points"]) == [100.0, 50.0, 0.0]


def test_percentile_peers_are_segments():
    profile = parse_profile(_single_measure("percentile: {min_peers: 1}"))
    metrics = pd.DataFrame(
        {
            "account_id": list("abcdef"),
            "segment": ["S", "S", "T", "T", None, None],
            "value": [1.0, 9.0, 500.0, 100.0, 3.0, np.nan],
        }
    )
    result = score_accounts(metrics, profile)
    points = list(result.measures["points"])

    assert points[:5] == [0.0, 100.0, 100.0, 0.0, 50.0]
    assert math.isnan(points[5])


def test_percentile_too_few_peers():
    profile = parse_profile(_single_measure("percentile: {min_peers: 3}"))
    metrics = pd.DataFrame(
        {
            "account_id": list("abcde"),
            "segment": ["S", "S", "T", "T", "T"],
            "value": [1.0, 2.0, 1.0, 2.0, 3.0],
        }
    )
    result = score_accounts(metrics, profile)

    assert _note(result, "a", "value") == "too few peers (2 < 3)"
    assert math.isnan(_points(result, "b", "value"))
    assert _points(result, "e", "value") == 100.0
    assert result.scores["band"].iloc[0] == "Unknown"


@pytest.mark.slow
def test_score_accounts_speed_100k_accounts():
    rng = np.random.default_rng(7)
    size = 100_000
    schemes = [
        "linear: {worst: 0, best: 50}",
        "thresholds: {good: 30, average: 10}",
        "percentile: {min_peers: 10}",
        "category: {points: {a: 0, b: 50, c: 100}}",
    ]
    measures = "".join(
        f"      - metric: m{j}\n        {schemes[j % 4]}\n" for j in range(20)
    )
    profile = parse_profile(
        f"name: speed\ncomponents:\n  - name: all\n    weight: 1\n"
        f"    measures:\n{measures}"
    )
    metrics = pd.DataFrame(
        {
            "account_id": [f"acc-{i}" for i in range(size)],
            "segment": rng.choice(["SMB", "Mid", "Ent"], size),
        }
        | {
            f"m{j}": (
                rng.choice(np.array(["a", "b", "c", None], dtype=object), size)
                if j % 4 == 3
                else rng.uniform(0, 60, size)
            )
            for j in range(20)
        }
    )
    score_accounts(metrics.head(100), profile)

    started = time.perf_counter()
    result = score_accounts(metrics, profile)
    elapsed = time.perf_counter() - started

    assert len(result.measures) == size * 20
    # A loop per account would take well over 5 s here; the engine takes about 1 s.
    assert elapsed < 5.0


def test_score_accounts_clamps_rounding_past_100():
    measures = "".join(
        f"      - metric: m{j}\n        linear: {{worst: 0, best: 1}}\n"
        for j in range(7)
    )
    profile = parse_profile(
        f"name: seven\ncomponents:\n  - name: all\n    weight: 1\n"
        f"    measures:\n{measures}"
    )
    metrics = pd.DataFrame({"account_id": ["a"]} | {f"m{j}": [1.0] for j in range(7)})
    result = score_accounts(metrics, profile)

    assert sum(result.measures["contribution"]) > 100.0
    assert result.scores["score"].iloc[0] == 100.0
