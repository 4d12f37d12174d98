from __future__ import annotations

import datetime as dt
import math
from decimal import Decimal
from fractions import Fraction

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from healthscore.exceptions import ConfigError, InputDataError, NotFoundError
from healthscore.history import score_snapshot
from healthscore.scoring import parse_profile
from healthscore.scoring.attribution import (
    AttributionStatus,
    PartKind,
    ScoreInputs,
    attribute_change,
    attribute_changes,
)
from healthscore.store import Store


def _linear_profile(
    weights: dict[str, float],
    *,
    name: str = "usage",
    min_coverage: float = 0.0,
    segments: list[str] | None = None,
) -> str:
    """Return a one-component profile where each metric earns its value as points."""
    lines = [f"name: {name}", f"min_coverage: {min_coverage}"]
    if segments is not None:
        lines.append(f"applies_to: {{segments: {segments}}}")
    lines += ["components:", "  - name: usage", "    weight: 1", "    measures:"]
    for metric, weight in weights.items():
        lines += [
            f"      - metric: {metric}",
            f"        weight: {weight}",
            "        linear: {worst: 0, best: 100}",
        ]
    return "\n".join(lines) + "\n"


def _metrics(segment: str | None = None, **values: float | None) -> pd.DataFrame:
    columns = {"account_id": ["acc"], "segment": pd.Series([segment], dtype=object)}
    for metric, value in values.items():
        columns[metric] = pd.Series([value], dtype=np.float64)
    return pd.DataFrame(columns)


def _amounts(attribution) -> dict[str, Fraction]:
    return {part.measure or str(part.kind): part.amount for part in attribution.parts}


def _sum_of_parts(attribution) -> Fraction:
    return sum((part.amount for part in attribution.parts), Fraction(0))


def test_attribute_change_one_measure_moves():
    # Nominal weights 3/4 and 1/4, both exact in binary.
    profile = parse_profile(_linear_profile({"a": 3, "b": 1}))
    before = ScoreInputs(profile, _metrics(a=80.0, b=40.0))
    after = ScoreInputs(profile, _metrics(a=60.0, b=40.0))

    result = attribute_change(before, after, "acc")

    assert result.status is AttributionStatus.ATTRIBUTED
    assert result.score_before == 0.75 * 80 + 0.25 * 40
    assert result.score_after == 0.75 * 60 + 0.25 * 40
    assert _amounts(result) == {"a": -15, "b": 0, "rounding": 0}
    assert [part.kind for part in result.parts] == [
        PartKind.DATA,
        PartKind.DATA,
        PartKind.ROUNDING,
    ]


def test_attribute_change_measure_went_missing():
    profile = parse_profile(_linear_profile({"a": 3, "b": 1}))
    before = ScoreInputs(profile, _metrics(a=80.0, b=40.0))
    after = ScoreInputs(profile, _metrics(a=80.0, b=None))

    result = attribute_change(before, after, "acc")

    # 70 before; after, a alone gives 80. Dropping b's 40 points, which sat 30
    # below the before score, adds 1/4 * 30 / (3/4) = 10.
    assert result.score_before == 70.0
    assert result.score_after == 80.0
    assert _amounts(result) == {"a": 0, "b": 10, "rounding": 0}
    assert result.parts[1].kind is PartKind.WENT_MISSING
    assert result.parts[1].points_before == 40.0
    assert math.isnan(result.parts[1].points_after)


def test_attribute_change_measure_came_back():
    profile = parse_profile(_linear_profile({"a": 3, "b": 1}))
    before = ScoreInputs(profile, _metrics(a=80.0, b=None))
    after = ScoreInputs(profile, _metrics(a=80.0, b=40.0))

    result = attribute_change(before, after, "acc")

    # b returns 40 points against a before score of 80: 1/4 * (40 - 80) / 1 = -10.
    assert _amounts(result) == {"a": 0, "b": -10, "rounding": 0}
    assert result.parts[1].kind is PartKind.CAME_BACK


def test_missing_at_before_score_is_zero():
    profile = parse_profile(_linear_profile({"a": 1, "b": 1}))
    before = ScoreInputs(profile, _metrics(a=50.0, b=50.0))
    after = ScoreInputs(profile, _metrics(a=50.0, b=None))

    result = attribute_change(before, after, "acc")

    assert result.parts[1].kind is PartKind.WENT_MISSING
    assert result.parts[1].amount == 0


def test_attribute_change_profile_weights_change():
    version_1 = parse_profile(_linear_profile({"a": 3, "b": 1}))
    version_2 = parse_profile(_linear_profile({"a": 1, "b": 1}))
    before = ScoreInputs(version_1, _metrics(a=80.0, b=40.0))
    after = ScoreInputs(version_2, _metrics(a=60.0, b=40.0))

    result = attribute_change(before, after, "acc")

    # 70 under 3:1; the before data scores 60 under 1:1, then a loses 20 points at
    # weight 1/2.
    assert result.score_before == 70.0
    assert result.score_after == 50.0
    assert result.parts[0].kind is PartKind.PROFILE_VERSION
    assert _amounts(result) == {
        "profile_version": -10,
        "a": -10,
        "b": 0,
        "rounding": 0,
    }
    assert result.profile_hash_before != result.profile_hash_after


def test_attribute_change_profile_switch():
    onboarding = parse_profile(
        _linear_profile({"a": 1}, name="onboarding", segments=["new"])
    )
    mature = parse_profile(
        _linear_profile({"a": 1, "c": 1}, name="mature", segments=["mature"])
    )
    before = ScoreInputs(onboarding, _metrics("new", a=80.0, c=20.0))
    after = ScoreInputs(mature, _metrics("mature", a=80.0, c=50.0))

    result = attribute_change(before, after, "acc")

    # The before data scores 0.5 * 80 + 0.5 * 20 = 50 under the mature profile,
    # although that profile applies only to the other segment.
    assert result.score_before == 80.0
    assert result.score_after == 65.0
    assert result.parts[0].kind is PartKind.PROFILE_SWITCH
    assert _amounts(result) == {"profile_switch": -30, "a": 0, "c": 15, "rounding": 0}
    assert (result.profile_before, result.profile_after) == ("onboarding", "mature")


def test_attribute_change_unknown_after():
    profile = parse_profile(_linear_profile({"a": 3, "b": 1}, min_coverage=0.9))
    before = ScoreInputs(profile, _metrics(a=80.0, b=40.0))
    after = ScoreInputs(profile, _metrics(a=80.0, b=None))

    result = attribute_change(before, after, "acc")

    assert result.status is AttributionStatus.UNKNOWN_AFTER
    assert result.parts == ()
    assert result.change is None
    assert result.coverage_after == 0.75
    assert "min_coverage" in result.reason
    assert result.rounded() == ()
    assert result.to_frame().empty


def test_attribute_change_unknown_before_and_both():
    profile = parse_profile(_linear_profile({"a": 1}, min_coverage=0.5))
    empty = ScoreInputs(profile, _metrics(a=None))
    full = ScoreInputs(profile, _metrics(a=10.0))

    assert (
        attribute_change(empty, full, "acc").status is AttributionStatus.UNKNOWN_BEFORE
    )
    assert (
        attribute_change(empty, empty, "acc").status is AttributionStatus.UNKNOWN_BOTH
    )


def test_attribute_change_not_separable():
    first = parse_profile(_linear_profile({"a": 1}, name="first"))
    second = parse_profile(_linear_profile({"c": 1}, name="second"))
    before = ScoreInputs(first, _metrics(a=80.0))
    after = ScoreInputs(second, _metrics(a=80.0, c=30.0))

    result = attribute_change(before, after, "acc")

    assert result.status is AttributionStatus.NOT_SEPARABLE
    assert result.parts == ()
    assert result.change == Fraction(30) - Fraction(80)


def test_attribute_change_percentile_uses_peers():
    profile = parse_profile(
        "name: rank\ncomponents:\n  - name: usage\n    weight: 1\n    measures:\n"
        "      - metric: users\n        percentile: {min_peers: 1}\n"
    )

    def table(values: list[float]) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "account_id": ["x", "y", "acc", "other"],
                "segment": ["A", "A", "A", "B"],
                "users": values,
            }
        )

    before = ScoreInputs(profile, table([10.0, 20.0, 30.0, 1.0]))
    after = ScoreInputs(profile, table([10.0, 20.0, 5.0, 99.0]))

    result = attribute_change(before, after, "acc")

    # Highest of three peers, then lowest: 100 points, then 0.
    assert (result.score_before, result.score_after) == (100.0, 0.0)
    assert _amounts(result) == {"users": -100, "rounding": 0}


def test_attribute_change_account_not_found():
    profile = parse_profile(_linear_profile({"a": 1}))
    present = ScoreInputs(profile, _metrics(a=1.0))
    absent = ScoreInputs(profile, _metrics(a=1.0).assign(account_id="zzz"))

    with pytest.raises(NotFoundError, match="'acc' has no row in the after"):
        attribute_change(present, absent, "acc")


def test_attribute_change_no_account_column():
    profile = parse_profile(_linear_profile({"a": 1}))
    present = ScoreInputs(profile, _metrics(a=1.0))
    headless = ScoreInputs(profile, pd.DataFrame({"a": [1.0]}))

    with pytest.raises(InputDataError, match="before metrics table has no"):
        attribute_change(headless, present, "acc")


def test_rounding_part_absorbs_float_error():
    # Weights of 1/3 are not exact in binary, so the engine's scores are rounded.
    profile = parse_profile(_linear_profile({"a": 1, "b": 1, "c": 1}))
    before = ScoreInputs(profile, _metrics(a=10.1, b=20.2, c=30.3))
    after = ScoreInputs(profile, _metrics(a=70.7, b=None, c=0.1))

    result = attribute_change(before, after, "acc")

    assert _sum_of_parts(result) == result.change
    assert result.parts[-1].kind is PartKind.ROUNDING
    assert abs(result.parts[-1].amount) < Fraction(1, 10**9)


def test_rounded_sums_to_rounded_change():
    profile = parse_profile(_linear_profile({"a": 1, "b": 1, "c": 1}))
    before = ScoreInputs(profile, _metrics(a=10.05, b=20.05, c=30.05))
    after = ScoreInputs(profile, _metrics(a=10.15, b=20.15, c=30.15))

    result = attribute_change(before, after, "acc")
    rounded = result.rounded(digits=1)

    expected = round(Decimal(result.score_after), 1) - round(
        Decimal(result.score_before), 1
    )
    assert sum(rounded) == expected
    assert rounded[-1] == 0
    assert all(value == round(value, 1) for value in rounded)


def test_rounded_rejects_negative_digits():
    profile = parse_profile(_linear_profile({"a": 1}))
    inputs = ScoreInputs(profile, _metrics(a=1.0))

    with pytest.raises(ConfigError, match="digits must be 0 or more; got -1"):
        attribute_change(inputs, inputs, "acc").rounded(digits=-1)


def test_to_frame_lists_parts():
    profile = parse_profile(_linear_profile({"a": 3, "b": 1}))
    before = ScoreInputs(profile, _metrics(a=80.0, b=40.0))
    after = ScoreInputs(profile, _metrics(a=60.0, b=40.0))

    frame = attribute_change(before, after, "acc").to_frame()

    assert frame["kind"].tolist() == ["data", "data", "rounding"]
    assert frame["measure"].tolist() == ["a", "b", None]
    assert frame["amount"].tolist() == [-15.0, 0.0, 0.0]
    assert frame["points_before"].tolist()[:2] == [80.0, 40.0]


def test_attribute_changes_matches_single_account():
    version_1 = parse_profile(_linear_profile({"a": 3, "b": 1}))
    version_2 = parse_profile(_linear_profile({"a": 1, "b": 2}))
    before = pd.DataFrame(
        {"account_id": ["p", "q", "r"], "a": [10.0, 50.0, 90.0], "b": [5.0, 0.0, 1.0]}
    )
    after = pd.DataFrame(
        {"account_id": ["q", "p", "s"], "a": [55.0, 12.0, 1.0], "b": [np.nan, 5, 3]}
    )
    inputs = ScoreInputs(version_1, before), ScoreInputs(version_2, after)

    batch = attribute_changes(*inputs)

    assert [result.account_id for result in batch] == ["q", "p"]
    for result in batch:
        single = attribute_change(*inputs, result.account_id)
        assert _amounts(single) == _amounts(result)
        assert (single.score_before, single.score_after) == (
            result.score_before,
            result.score_after,
        )
        assert _sum_of_parts(result) == result.change


def _pivot_metric_snapshots(store: Store, run_id: str) -> pd.DataFrame:
    rows = store.table("metric_snapshots").to_pandas()
    rows = rows[rows["run_id"] == run_id]
    values = (
        rows["number_value"]
        .astype(object)
        .where(rows["number_value"].notna(), rows["text_value"])
    )
    wide = rows.assign(value=values).pivot(
        index="account_id", columns="metric", values="value"
    )
    wide = wide.reset_index().rename_axis(columns=None)
    wide["seats"] = wide["seats"].astype(np.float64)
    return wide


def test_attribute_change_from_stored_runs(tmp_path):
    version_1 = parse_profile(
        "name: seats\ncomponents:\n"
        "  - name: size\n    weight: 3\n    measures:\n"
        "      - metric: seats\n        linear: {worst: 0, best: 100}\n"
        "  - name: plan\n    weight: 1\n    measures:\n"
        "      - metric: plan\n        category: {points: {pro: 100, free: 0}}\n"
    )
    version_2 = parse_profile(version_1.text.replace("weight: 3", "weight: 1"))
    day = dt.date(2024, 1, 31)

    with Store.open(tmp_path / "runs.duckdb") as store:
        accounts = {
            "account_id": ["a", "b"],
            "plan": ["pro", "free"],
            "seats": [50, 70],
            "load_id": ["l", "l"],
        }
        store.insert("accounts", pa.table(accounts))
        runs = [
            score_snapshot(store, profile, day) for profile in (version_1, version_2)
        ]
        stored = store.table("scores").to_pandas()
        texts = store.table("profiles").to_pandas().set_index("profile_hash")["text"]
        inputs = [
            ScoreInputs(
                parse_profile(texts[run.profile.hash]),
                _pivot_metric_snapshots(store, run.run_id),
            )
            for run in runs
        ]

    result = attribute_change(inputs[0], inputs[1], "a")

    scores = stored.set_index(["run_id", "account_id"])["score"]
    assert result.score_before == scores[(runs[0].run_id, "a")]
    assert result.score_after == scores[(runs[1].run_id, "a")]
    # a: 0.75 * 50 + 0.25 * 100 = 62.5, then 0.5 * 50 + 0.5 * 100 = 75.
    assert result.change == Fraction(75) - Fraction(62.5)
    assert _amounts(result) == {
        "profile_version": Fraction(25, 2),
        "seats": 0,
        "plan": 0,
        "rounding": 0,
    }


# Random profiles: up to five measures with metrics m0..m4 spread over up to three
# components, each with a linear or a thresholds scheme.

linear_scheme = st.tuples(
    st.floats(-100, 100, allow_nan=False), st.floats(-100, 100, allow_nan=False)
).filter(lambda pair: abs(pair[0] - pair[1]) > 1e-6)
threshold_scheme = st.tuples(
    st.floats(-100, 100, allow_nan=False),
    st.floats(0.001, 100, allow_nan=False),
    st.booleans(),
    st.lists(st.floats(0, 100, allow_nan=False), min_size=3, max_size=3),
)
measure_spec = st.tuples(
    st.integers(0, 2),
    st.one_of(st.integers(1, 9), st.floats(0.01, 50, allow_nan=False)),
    st.one_of(linear_scheme, threshold_scheme),
)
profile_spec = st.tuples(
    st.lists(measure_spec, min_size=1, max_size=5),
    st.lists(st.floats(0.01, 10, allow_nan=False), min_size=3, max_size=3),
    st.sampled_from([0.0, 0.0, 0.3, 0.7]),
    st.sampled_from(["first", "second"]),
)
finite_value = st.floats(-150, 150, allow_nan=False)
# About one value in four is missing.
metric_value = st.one_of(st.none(), finite_value, finite_value, finite_value)
metric_rows = st.lists(
    st.lists(metric_value, min_size=5, max_size=5), min_size=1, max_size=4
)


def _scheme(spec) -> dict:
    if len(spec) == 2:
        return {"linear": {"worst": spec[0], "best": spec[1]}}
    average, gap, higher, points = spec
    good = average + gap if higher else average - gap
    good_points, average_points, poor_points = sorted(points, reverse=True)
    return {
        "thresholds": {
            "direction": "higher_is_better" if higher else "lower_is_better",
            "good": good,
            "average": average,
            "points": {
                "good": good_points,
                "average": average_points,
                "poor": poor_points,
            },
        }
    }


def _random_profile(spec):
    measures, component_weights, min_coverage, name = spec
    components = []
    for index, weight in enumerate(component_weights):
        members = [
            {"metric": f"m{j}", "weight": measure[1], **_scheme(measure[2])}
            for j, measure in enumerate(measures)
            if measure[0] == index
        ]
        if members:
            components.append(
                {"name": f"c{index}", "weight": weight, "measures": members}
            )
    document = {"name": name, "min_coverage": min_coverage, "components": components}
    return parse_profile(yaml.safe_dump(document))


def _random_metrics(rows) -> pd.DataFrame:
    columns = {"account_id": [f"acc-{i}" for i in range(len(rows))]}
    for j in range(5):
        columns[f"m{j}"] = pd.Series([row[j] for row in rows], dtype=np.float64)
    return pd.DataFrame(columns)


@settings(deadline=None, max_examples=40)
@given(profile_spec, profile_spec, st.data())
def test_parts_sum_to_change_exactly(spec_before, spec_after, data):
    rows_before = data.draw(metric_rows)
    rows_after = data.draw(
        st.lists(
            st.lists(metric_value, min_size=5, max_size=5),
            min_size=len(rows_before),
            max_size=len(rows_before),
        )
    )
    before = ScoreInputs(_random_profile(spec_before), _random_metrics(rows_before))
    after = ScoreInputs(_random_profile(spec_after), _random_metrics(rows_after))

    for result in attribute_changes(before, after):
        if result.status is AttributionStatus.ATTRIBUTED:
            assert _sum_of_parts(result) == result.change
            assert abs(result.parts[-1].amount) < Fraction(1, 10**9)
            rounded = result.rounded(digits=1)
            expected = round(Decimal(result.score_after), 1) - round(
                Decimal(result.score_before), 1
            )
            assert sum(rounded) == expected
        else:
            assert result.parts == ()


@settings(deadline=None, max_examples=30)
@given(profile_spec, metric_rows)
def test_identical_inputs_give_zero_parts(spec, rows):
    inputs = ScoreInputs(_random_profile(spec), _random_metrics(rows))

    for result in attribute_changes(inputs, inputs):
        assert all(part.amount == 0 for part in result.parts)
        assert result.change in (None, 0)


@settings(deadline=None, max_examples=30)
@given(
    profile_spec,
    metric_rows,
    st.integers(0, 4),
    st.floats(-150, 150, allow_nan=False),
)
def test_one_measure_change_moves_only_its_part(spec, rows, metric, value):
    profile = _random_profile(spec)
    before = _random_metrics(rows)
    after = before.copy()
    present = after[f"m{metric}"].notna()
    after.loc[present, f"m{metric}"] = value

    results = attribute_changes(
        ScoreInputs(profile, before), ScoreInputs(profile, after)
    )

    for result in results:
        for part in result.parts:
            if part.kind is PartKind.ROUNDING or part.measure == f"m{metric}":
                continue
            assert part.amount == 0, part
        assert result.coverage_before == result.coverage_after


@settings(deadline=None, max_examples=30)
@given(profile_spec, metric_rows, st.data())
def test_reversed_dates_negate_parts(spec, rows, data):
    profile = _random_profile(spec)
    before = _random_metrics(rows)
    after = before.copy()
    for j in range(5):
        present = after[f"m{j}"].notna()
        size = len(rows)
        new_values = data.draw(st.lists(finite_value, min_size=size, max_size=size))
        after.loc[present, f"m{j}"] = np.array(new_values)[present]
    forward_inputs = ScoreInputs(profile, before), ScoreInputs(profile, after)

    forward = attribute_changes(*forward_inputs)
    backward = attribute_changes(*reversed(forward_inputs))

    for forward_result, backward_result in zip(forward, backward, strict=True):
        assert [-part.amount for part in forward_result.parts] == [
            part.amount for part in backward_result.parts
        ]
