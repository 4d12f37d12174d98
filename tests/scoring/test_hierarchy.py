from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from healthscore.exceptions import InputDataError, ProfileError
from healthscore.scoring import parse_profile
from healthscore.scoring.hierarchy import (
    MEAN_FALLBACK_NOTE,
    NO_ARR_NOTE,
    NO_DATA_NOTE,
    NOT_WORST_NOTE,
    hierarchy_rules,
    parse_profile_with_hierarchy,
    roll_up,
)

# Component weights 3 and 1 normalise to 0.75 and 0.25.
PROFILE = """
name: family
components:
  - name: usage
    weight: 3
    measures:
      - metric: active_days
        linear: {worst: 0, best: 20}
  - name: support
    weight: 1
    measures:
      - metric: open_tickets
        linear: {worst: 10, best: 0}
"""


def _rules(hierarchy: str = ""):
    _, rules = parse_profile_with_hierarchy(PROFILE + hierarchy)
    return rules


def _children(rows):
    """Build child scores from (account_id, score, usage, support) tuples."""
    return pd.DataFrame(rows, columns=["account_id", "score", "usage", "support"])


def _accounts(rows):
    """Build accounts from (account_id, parent_id, arr) tuples."""
    return pd.DataFrame(rows, columns=["account_id", "parent_id", "arr"])


def _parts(result, parent, component):
    rows = result.contributions
    chosen = rows[(rows.parent_id == parent) & (rows.component == component)]
    return chosen.reset_index(drop=True)


def _component(result, parent, component):
    row = result.scores.set_index("parent_id").loc[parent]
    return float(row[component])


def _family(usage, support, arr):
    """One parent P with children C1.. holding the given values."""
    ids = [f"C{i + 1}" for i in range(len(usage))]
    children = _children(
        [(c, 50.0, u, s) for c, u, s in zip(ids, usage, support, strict=True)]
    )
    accounts = _accounts(
        [("P", None, 0.0), *[(c, "P", a) for c, a in zip(ids, arr, strict=True)]]
    )
    return children, accounts


def test_roll_up_arr_weighted_mean_by_hand():
    children, accounts = _family([40.0, 80.0], [60.0, 60.0], [1000.0, 3000.0])

    result = roll_up(children, accounts, _rules())
    parts = _parts(result, "P", "usage")

    # 1000 / 4000 * 40 + 3000 / 4000 * 80 = 10 + 60
    assert parts["child_id"].tolist() == ["C1", "C2"]
    assert parts["weight"].tolist() == [0.25, 0.75]
    assert parts["contribution"].tolist() == [10.0, 60.0]
    assert _component(result, "P", "usage") == 70.0
    assert sum(parts["contribution"]) == _component(result, "P", "usage")


def test_roll_up_mean_by_hand():
    children, accounts = _family([40.0, 80.0, 90.0], [60.0] * 3, [1.0, 1.0, 50.0])

    result = roll_up(children, accounts, _rules("hierarchy: {default: mean}\n"))
    parts = _parts(result, "P", "usage")
    score = _component(result, "P", "usage")

    assert parts["weight"].tolist() == [1 / 3, 1 / 3, 1 / 3]
    assert parts["contribution"].tolist() == pytest.approx([40 / 3, 80 / 3, 30.0])
    assert score == pytest.approx(70.0)
    assert sum(parts["contribution"]) == score


def test_roll_up_worst_gives_lowest_child_everything():
    children, accounts = _family([40.0, 80.0, 30.0], [60.0] * 3, [1.0, 1.0, 1.0])

    result = roll_up(children, accounts, _rules("hierarchy: {usage: worst}\n"))
    parts = _parts(result, "P", "usage")

    assert parts["weight"].tolist() == [0.0, 0.0, 1.0]
    assert parts["contribution"].tolist() == [0.0, 0.0, 30.0]
    assert parts["note"].tolist() == [NOT_WORST_NOTE, NOT_WORST_NOTE, None]
    assert _component(result, "P", "usage") == 30.0


def test_roll_up_worst_tie_goes_to_first_child():
    children, accounts = _family([30.0, 30.0], [60.0, 60.0], [1.0, 1.0])

    result = roll_up(children, accounts, _rules("hierarchy: {usage: worst}\n"))

    assert _parts(result, "P", "usage")["weight"].tolist() == [1.0, 0.0]


def test_roll_up_share_poor_counts_lowest_band():
    # Poor is below 40 with the default bands: 20 and 39.99 are Poor, 40 is not.
    support = [20.0, 40.0, 39.99, 100.0]
    children, accounts = _family([50.0] * 4, support, [1.0] * 4)

    result = roll_up(children, accounts, _rules("hierarchy: {support: share_poor}\n"))
    parts = _parts(result, "P", "support")

    assert parts["points"].tolist() == [0.0, 100.0, 0.0, 100.0]
    assert parts["contribution"].tolist() == [0.0, 25.0, 0.0, 25.0]
    assert _component(result, "P", "support") == 50.0


def test_roll_up_parent_score_from_components():
    children, accounts = _family([40.0, 80.0], [20.0, 40.0], [1000.0, 3000.0])

    result = roll_up(children, accounts, _rules("hierarchy: {support: worst}\n"))
    row = result.scores.iloc[0]
    components = result.components

    # usage 70 * 0.75 + support 20 * 0.25 = 52.5 + 5
    assert row["score"] == 57.5
    assert row["band"] == "Average"
    assert row["coverage"] == 1.0
    assert components["contribution"].tolist() == [52.5, 5.0]
    assert sum(components["contribution"]) == row["score"]
    assert components["operator"].tolist() == ["arr_weighted_mean", "worst"]


def test_roll_up_missing_component_renormalised():
    children, accounts = _family([40.0, 80.0], [np.nan, np.nan], [1.0, 3.0])

    result = roll_up(children, accounts, _rules())
    row = result.scores.iloc[0]

    assert row["coverage"] == 0.75
    assert row["score"] == 70.0
    assert row["band"] == "Good"
    assert math.isnan(row["support"])
    assert _parts(result, "P", "support")["note"].tolist() == [NO_DATA_NOTE] * 2


def test_roll_up_low_coverage_is_unknown():
    children, accounts = _family([np.nan], [80.0], [1.0])

    result = roll_up(children, accounts, _rules())
    row = result.scores.iloc[0]

    assert row["coverage"] == 0.25
    assert math.isnan(row["score"])
    assert row["band"] == "Unknown"


def test_roll_up_child_without_data_is_left_out():
    children, accounts = _family([40.0, np.nan, 80.0], [60.0] * 3, [1.0, 1e6, 3.0])

    result = roll_up(children, accounts, _rules())
    parts = _parts(result, "P", "usage")

    assert parts["weight"].tolist() == [0.25, 0.0, 0.75]
    assert parts["note"].tolist() == [None, NO_DATA_NOTE, None]
    assert _component(result, "P", "usage") == 70.0


def test_roll_up_child_without_arr_gets_no_weight():
    children, accounts = _family([40.0, 80.0], [60.0, 60.0], [np.nan, 2.0])

    result = roll_up(children, accounts, _rules())
    parts = _parts(result, "P", "usage")

    assert parts["weight"].tolist() == [0.0, 1.0]
    assert parts["note"].tolist() == [NO_ARR_NOTE, None]
    assert _component(result, "P", "usage") == 80.0


def test_roll_up_without_arr_uses_mean():
    children, accounts = _family([40.0, 80.0], [60.0, 60.0], [0.0, np.nan])

    result = roll_up(children, accounts, _rules())
    parts = _parts(result, "P", "usage")

    assert parts["weight"].tolist() == [0.5, 0.5]
    assert parts["note"].tolist() == [MEAN_FALLBACK_NOTE] * 2
    assert _component(result, "P", "usage") == 60.0


def test_roll_up_worst_child_and_counts():
    children, accounts = _family([40.0, 80.0], [60.0, 60.0], [1.0, 1.0])
    children.loc[1, "score"] = 12.5

    row = roll_up(children, accounts, _rules()).scores.iloc[0]

    assert row["children"] == 2
    assert row["worst_child"] == "C2"
    assert row["worst_child_score"] == 12.5
    assert row["arr"] == 2.0
    assert row["level"] == 1


def test_roll_up_nested_levels():
    # Grandparent G has the parents P1 (children C1, C2) and P2 (C3), and leaf L.
    accounts = _accounts(
        [
            ("G", None, 0.0),
            ("P1", "G", 99.0),
            ("P2", "G", 99.0),
            ("C1", "P1", 1000.0),
            ("C2", "P1", 3000.0),
            ("C3", "P2", 500.0),
            ("L", "G", 500.0),
        ]
    )
    children = _children(
        [
            ("C1", 50.0, 40.0, 60.0),
            ("C2", 50.0, 80.0, 60.0),
            ("C3", 50.0, 20.0, 60.0),
            ("L", 50.0, 100.0, 60.0),
            # P1's own score is replaced by its roll-up one level up.
            ("P1", 0.0, 0.0, 0.0),
        ]
    )

    result = roll_up(children, accounts, _rules())
    scores = result.scores.set_index("parent_id")
    parts = _parts(result, "G", "usage")

    assert scores["level"].to_dict() == {"P1": 1, "P2": 1, "G": 2}
    assert scores.loc["P1", "arr"] == 4000.0
    # (4000 * 70 + 500 * 20 + 500 * 100) / 5000, the ARR-weighted mean of the leaves.
    assert parts["child_id"].tolist() == ["L", "P1", "P2"]
    assert parts["contribution"].tolist() == pytest.approx([10.0, 56.0, 2.0])
    assert _component(result, "G", "usage") == pytest.approx(68.0)
    assert sum(parts["contribution"]) == _component(result, "G", "usage")
    assert scores.loc["G", "children"] == 3


def test_roll_up_rejects_cycles():
    accounts = _accounts(
        [("A", "B", 1.0), ("B", "A", 1.0), ("C", "C", 1.0), ("D", "A", 1.0)]
    )
    children = _children([("D", 50.0, 50.0, 50.0)])

    with pytest.raises(InputDataError) as caught:
        roll_up(children, accounts, _rules())

    message = str(caught.value)
    assert "2 cycle(s)" in message
    assert "A -> B -> A" in message
    assert "C -> C" in message


def test_roll_up_rejects_missing_component_column():
    children = _children([("C1", 50.0, 50.0, 50.0)]).drop(columns="support")
    accounts = _accounts([("C1", "P", 1.0)])

    with pytest.raises(InputDataError, match="no column \\['support'\\]"):
        roll_up(children, accounts, _rules())


def test_roll_up_rejects_negative_arr():
    children, accounts = _family([40.0], [60.0], [-5.0])

    with pytest.raises(InputDataError, match="negative ARR"):
        roll_up(children, accounts, _rules())


def test_roll_up_without_parents_is_empty():
    children = _children([("C1", 50.0, 50.0, 50.0)])
    accounts = _accounts([("C1", None, 1.0)])

    result = roll_up(children, accounts, _rules())

    assert result.scores.empty
    assert result.contributions.empty
    assert "usage" in result.scores.columns


def test_roll_up_contributions_sum_exactly_random():
    rng = np.random.default_rng(7)
    count = 400
    parents = [f"P{i}" for i in rng.integers(0, 40, count)]
    usage = np.round(rng.uniform(0, 100, count), 3)
    usage[rng.random(count) < 0.1] = np.nan
    support = np.round(rng.uniform(0, 100, count), 3)
    arr = np.round(rng.uniform(0, 50_000, count), 2)
    ids = [f"C{i:03d}" for i in range(count)]
    children = _children(list(zip(ids, [50.0] * count, usage, support, strict=True)))
    accounts = _accounts(list(zip(ids, parents, arr, strict=True)))

    for operator in ("arr_weighted_mean", "mean", "worst", "share_poor"):
        result = roll_up(
            children, accounts, _rules(f"hierarchy: {{default: {operator}}}\n")
        )
        for (parent, component), rows in result.contributions.groupby(
            ["parent_id", "component"]
        ):
            score = _component(result, parent, component)
            if not math.isnan(score):
                assert sum(rows["contribution"]) == score, (operator, parent)

    # The ARR-weighted mean against numpy's weighted average.
    result = roll_up(children, accounts, _rules())
    frame = pd.DataFrame({"parent": parents, "usage": usage, "arr": arr}).dropna()
    for parent, rows in frame.groupby("parent"):
        expected = np.average(rows["usage"], weights=rows["arr"])
        assert _component(result, parent, "usage") == pytest.approx(expected)


def test_hierarchy_rules_default_and_overrides():
    rules = _rules("hierarchy:\n  default: mean\n  support: share_poor\n")

    assert dict(rules.operators) == {"usage": "mean", "support": "share_poor"}
    assert rules.poor_band == "Poor"


def test_hierarchy_rules_without_key():
    rules = hierarchy_rules(parse_profile(PROFILE))

    assert dict(rules.operators) == {
        "usage": "arr_weighted_mean",
        "support": "arr_weighted_mean",
    }


def test_hierarchy_rules_reject_unknown_operator():
    with pytest.raises(ProfileError) as caught:
        _rules("hierarchy: {support: wrost}\n")

    assert caught.value.field == "hierarchy.support"
    assert "unknown roll-up operator 'wrost'" in str(caught.value)
    assert "Did you mean 'worst'?" in str(caught.value)


def test_hierarchy_rules_reject_unknown_component():
    with pytest.raises(ProfileError, match="unknown component 'usge'"):
        _rules("hierarchy: {usge: mean}\n")


def test_hierarchy_rules_reject_list():
    with pytest.raises(ProfileError, match="expected a mapping"):
        _rules("hierarchy: [mean]\n")


def test_parse_profile_with_hierarchy_keeps_text_and_hash():
    text = PROFILE + "hierarchy:\n  # per component\n  support: worst\n"

    profile, _ = parse_profile_with_hierarchy(text)

    assert profile.text == text
    assert profile.hash == parse_profile(PROFILE).hash


def test_parse_profile_with_hierarchy_block_in_middle():
    head, tail = PROFILE.split("components:")
    text = head + "hierarchy:\n  usage: worst\ncomponents:" + tail

    profile, rules = parse_profile_with_hierarchy(text)

    assert profile.hash == parse_profile(PROFILE).hash
    assert rules.operators["usage"] == "worst"


def test_parse_profile_accepts_hierarchy_key():
    text = PROFILE + "hierarchy:\n  support: worst\n"

    profile = parse_profile(text)

    assert hierarchy_rules(profile).operators["support"] == "worst"
    assert profile.hash == parse_profile(PROFILE).hash


def test_parse_profile_rejects_invalid_hierarchy():
    with pytest.raises(ProfileError) as caught:
        parse_profile(PROFILE + "hierarchy: {support: wrost}\n")

    assert caught.value.field == "hierarchy.support"
