from __future__ import annotations

import copy
import math
import re
from typing import Any

import pytest
import yaml

from healthscore.exceptions import ProfileError
from healthscore.scoring import (
    Band,
    CategoryScheme,
    LinearScheme,
    PercentileScheme,
    ThresholdScheme,
    load_profile,
    parse_profile,
)
from tests.scoring.profiles import HAND_PROFILE

BASE: dict[str, Any] = yaml.safe_load(HAND_PROFILE)


def _parse(changes) -> None:
    """Apply ``changes`` to a copy of the hand profile and parse the result."""
    raw = copy.deepcopy(BASE)
    changes(raw)
    parse_profile(yaml.safe_dump(raw, sort_keys=False), path="p.yaml")


def _measure(raw, component: int, measure: int) -> dict[str, Any]:
    return raw["components"][component]["measures"][measure]


def test_parse_profile_hand_profile_model():
    profile = parse_profile(HAND_PROFILE)
    commitment, engagement = profile.components

    assert profile.name == "hand"
    assert profile.description == ""
    assert profile.applies_to_segments is None
    assert profile.min_coverage == 0.3
    assert profile.bands == (Band("Good", 70), Band("Average", 40), Band("Poor", 0))
    assert commitment.measures[0].scheme == CategoryScheme(
        points=(("Month-to-month", 0), ("One year", 70), ("Two year", 100))
    )
    assert commitment.measures[1].scheme == LinearScheme(worst=0, best=48)
    assert engagement.measures[0].scheme == ThresholdScheme(
        good=30, average=90, direction="lower_is_better"
    )
    assert engagement.measures[1].scheme == PercentileScheme(min_peers=3)
    assert engagement.measures[1].weight == 1.0


def test_parse_profile_nominal_weights():
    profile = parse_profile(HAND_PROFILE)

    assert profile.nominal_weights() == pytest.approx(
        (0.6 * 3 / 4, 0.6 * 1 / 4, 0.4 * 1 / 2, 0.4 * 1 / 2)
    )


def test_parse_profile_metrics_distinct_in_order():
    raw = copy.deepcopy(BASE)
    extra = {
        "name": "contract_again",
        "metric": "contract",
        "linear": {"worst": 0, "best": 1},
    }
    raw["components"][1]["measures"].append(extra)
    profile = parse_profile(yaml.safe_dump(raw))

    assert profile.metrics == ("contract", "tenure", "days_idle", "active_users")


def test_parse_profile_measure_name_override():
    raw = copy.deepcopy(BASE)
    _measure(raw, 0, 1)["name"] = "tenure_months"
    profile = parse_profile(yaml.safe_dump(raw))

    assert profile.components[0].measures[1].name == "tenure_months"
    assert profile.components[0].measures[1].metric == "tenure"


def test_parse_profile_spec_example(tmp_path):
    path = tmp_path / "telco.yaml"
    path.write_text(
        """
name: telco-retention
description: Hand-set profile
applies_to:
  segments: [Telco]
components:
  - name: commitment
    weight: 40
    measures:
      - metric: contract
        weight: 3
        category:
          points: {Month-to-month: 0, One year: 70, Two year: 100}
          other: 50
      - metric: days_since_last_event
        thresholds:
          direction: lower_is_better
          good: 30
          average: 90
          points: {good: 100, average: 60, poor: 0}
      - metric: active_users_30d
        percentile:
          min_peers: 10
          direction: higher_is_better
""",
        encoding="utf-8",
    )
    profile = load_profile(path)

    assert profile.source == path
    assert profile.applies_to_segments == ("Telco",)
    assert profile.applies_to("Telco")
    assert not profile.applies_to(None)
    assert profile.min_coverage == 0.5
    assert profile.components[0].measures[0].scheme.other == 50


def test_load_profile_missing_file(tmp_path):
    path = tmp_path / "absent.yaml"

    with pytest.raises(ProfileError, match="cannot read the profile file") as info:
        load_profile(path)
    assert info.value.path == path


def test_profile_band_for():
    profile = parse_profile(HAND_PROFILE)

    assert profile.band_for(70) == "Good"
    assert profile.band_for(69.999) == "Average"
    assert profile.band_for(40) == "Average"
    assert profile.band_for(0) == "Poor"
    assert profile.band_for(None) == "Unknown"
    assert profile.band_for(math.nan) == "Unknown"


def test_profile_custom_bands():
    text = HAND_PROFILE + "bands: [{name: Green, min: 80}, {name: Red, min: 0}]\n"
    profile = parse_profile(text)

    assert profile.band_for(80) == "Green"
    assert profile.band_for(79.9) == "Red"


def test_profile_hash_ignores_formatting():
    reformatted = yaml.safe_dump(BASE, default_flow_style=True, sort_keys=True)
    reordered = HAND_PROFILE.replace(
        "{Month-to-month: 0, One year: 70, Two year: 100}",
        "{Two year: 100.0, Month-to-month: 0, One year: 70}",
    ).replace("weight: 60", "weight: 60.0")

    assert parse_profile(reformatted).hash == parse_profile(HAND_PROFILE).hash
    assert parse_profile(reordered).hash == parse_profile(HAND_PROFILE).hash
    assert re.fullmatch("[0-9a-f]{64}", parse_profile(HAND_PROFILE).hash)


def test_profile_hash_changes_with_weight():
    changed = HAND_PROFILE.replace("weight: 60", "weight: 61")

    assert parse_profile(changed).hash != parse_profile(HAND_PROFILE).hash


def test_profile_equality_ignores_source():
    assert parse_profile(HAND_PROFILE, path="a.yaml") == parse_profile(HAND_PROFILE)


def test_profile_yes_no_stay_text():
    text = HAND_PROFILE.replace(
        "{Month-to-month: 0, One year: 70, Two year: 100}", "{Yes: 100, no: 0, on: 5}"
    )
    scheme = parse_profile(text).components[0].measures[0].scheme

    assert dict(scheme.points) == {"Yes": 100, "no": 0, "on": 5}


def test_check_metrics_accepts_known():
    profile = parse_profile(HAND_PROFILE)

    profile.check_metrics({"contract", "tenure", "days_idle", "active_users", "arr"})
    profile.check_metrics(lambda name: True)


def test_check_metrics_unknown_with_close_match():
    profile = parse_profile(HAND_PROFILE, path="hand.yaml")
    known = {"contract", "tenure", "days_idle", "active_users_30d"}

    with pytest.raises(ProfileError, match="Did you mean 'active_users_30d'") as info:
        profile.check_metrics(known)
    assert info.value.field == "components[1].measures[1].metric"
    assert "unknown metric 'active_users'" in str(info.value)
    assert str(info.value).startswith("hand.yaml: components[1].measures[1].metric")


def test_check_metrics_unknown_by_callable():
    profile = parse_profile(HAND_PROFILE)

    with pytest.raises(ProfileError, match="unknown metric 'contract'") as info:
        profile.check_metrics(lambda name: name != "contract")
    assert info.value.field == "components[0].measures[0].metric"


def _set(path: str, value):
    """Return a change that sets the value at a dotted path such as 'a.0.b'."""

    def change(raw):
        *parents, last = path.split(".")
        node = raw
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        if value is _DELETE:
            del node[int(last) if last.isdigit() else last]
        else:
            node[int(last) if last.isdigit() else last] = value

    return change


_DELETE = object()
M00 = "components.0.measures.0"
M01 = "components.0.measures.1"
M10 = "components.1.measures.0"
M11 = "components.1.measures.1"

INVALID = [
    pytest.param(
        _set("min_coverag", 0.5),
        "min_coverag",
        r"unknown key 'min_coverag'. Did you mean 'min_coverage'\?",
        id="unknown-top-key",
    ),
    pytest.param(
        _set(f"{M01}.wieght", 2),
        "components[0].measures[1].wieght",
        r"unknown key 'wieght'. Did you mean 'weight'\?",
        id="unknown-measure-key",
    ),
    pytest.param(
        _set(f"{M10}.thresholds.averge", 5),
        "components[1].measures[0].thresholds.averge",
        r"Did you mean 'average'\?",
        id="unknown-scheme-key",
    ),
    pytest.param(
        _set("name", _DELETE), "name", "missing required key 'name'", id="no-name"
    ),
    pytest.param(
        _set("name", "Telco Retention"),
        "name",
        "invalid value 'Telco Retention': expected only lower-case letters, "
        "digits, '-' and '_'. Write it as 'telco-retention'",
        id="bad-name",
    ),
    pytest.param(
        _set("components", _DELETE),
        "components",
        "missing required key 'components'",
        id="no-components",
    ),
    pytest.param(
        _set("components", []),
        "components",
        "expected a non-empty list",
        id="empty-components",
    ),
    pytest.param(
        _set(f"{M00}.metric", _DELETE),
        "components[0].measures[0].metric",
        "missing required key 'metric'",
        id="no-metric",
    ),
    pytest.param(
        _set("components.1.weight", _DELETE),
        "components[1].weight",
        "missing required key 'weight'",
        id="no-component-weight",
    ),
    pytest.param(
        _set("components.1.name", _DELETE),
        "components[1].name",
        "missing required key 'name'",
        id="no-component-name",
    ),
    pytest.param(
        _set(f"{M01}.weight", -1),
        "components[0].measures[1].weight",
        "expected a number from 0 to 1,000,000; got -1",
        id="negative-weight",
    ),
    pytest.param(
        _set(f"{M01}.weight", "heavy"),
        "components[0].measures[1].weight",
        "expected a number from 0 to 1,000,000; got 'heavy'",
        id="text-weight",
    ),
    pytest.param(
        _set(f"{M01}.weight", True),
        "components[0].measures[1].weight",
        "got True",
        id="boolean-weight",
    ),
    pytest.param(
        _set("components.0.weight", math.inf),
        "components[0].weight",
        "got inf",
        id="infinite-weight",
    ),
    pytest.param(
        lambda raw: [_set(f"{M}.weight", 0)(raw) for M in (M00, M01)],
        "components[0].measures",
        "every measure weight is 0",
        id="all-zero-measure-weights",
    ),
    pytest.param(
        lambda raw: [_set(f"components.{i}.weight", 0)(raw) for i in (0, 1)],
        "components",
        "every component weight is 0",
        id="all-zero-component-weights",
    ),
    pytest.param(
        _set(f"{M01}.linear", _DELETE),
        "components[0].measures[1]",
        "expected exactly one scheme .*; found none",
        id="no-scheme",
    ),
    pytest.param(
        _set(f"{M01}.percentile", {}),
        "components[0].measures[1]",
        "found linear, percentile",
        id="two-schemes",
    ),
    pytest.param(
        _set(f"{M10}.thresholds", {"good": 5, "average": 10}),
        "components[1].measures[0].thresholds.good",
        r"good \(5\) must be greater than average \(10\).*Swap the values",
        id="thresholds-higher-misordered",
    ),
    pytest.param(
        _set(f"{M10}.thresholds", {"good": 10, "average": 10}),
        "components[1].measures[0].thresholds.good",
        r"good \(10\) must be greater than average \(10\)",
        id="thresholds-overlap",
    ),
    pytest.param(
        _set(f"{M10}.thresholds.good", 100),
        "components[1].measures[0].thresholds.good",
        r"good \(100\) must be less than average \(90\) when direction is "
        "'lower_is_better'",
        id="thresholds-lower-misordered",
    ),
    pytest.param(
        _set(f"{M10}.thresholds.direction", "up"),
        "components[1].measures[0].thresholds.direction",
        "invalid direction 'up'",
        id="bad-direction",
    ),
    pytest.param(
        _set(f"{M10}.thresholds.points", {"good": 150}),
        "components[1].measures[0].thresholds.points.good",
        "expected a number from 0 to 100; got 150",
        id="threshold-points-above-100",
    ),
    pytest.param(
        _set(f"{M10}.thresholds.points", {"good": 50, "average": 70}),
        "components[1].measures[0].thresholds.points",
        "expected good >= average >= poor",
        id="threshold-points-order",
    ),
    pytest.param(
        _set(f"{M01}.linear", {"worst": 5, "best": 5}),
        "components[0].measures[1].linear.best",
        "worst and best are both 5",
        id="linear-equal",
    ),
    pytest.param(
        _set(f"{M01}.linear", {"worst": 5}),
        "components[0].measures[1].linear.best",
        "missing required key 'best'",
        id="linear-no-best",
    ),
    pytest.param(
        _set(f"{M00}.category.points.One year", 120),
        "components[0].measures[0].category.points.One year",
        "expected a number from 0 to 100; got 120",
        id="category-points-above-100",
    ),
    pytest.param(
        _set(f"{M00}.category.other", -1),
        "components[0].measures[0].category.other",
        "expected a number from 0 to 100; got -1",
        id="category-other-negative",
    ),
    pytest.param(
        _set(f"{M00}.category.points", {}),
        "components[0].measures[0].category.points",
        "expected at least one 'value: points' entry",
        id="category-empty",
    ),
    pytest.param(
        _set(f"{M11}.percentile.min_peers", 2.5),
        "components[1].measures[1].percentile.min_peers",
        "expected a whole number of accounts; got 2.5",
        id="percentile-fractional-peers",
    ),
    pytest.param(
        _set(f"{M11}.percentile.min_peers", 0),
        "components[1].measures[1].percentile.min_peers",
        "expected a number from 1 to 1,000,000; got 0",
        id="percentile-zero-peers",
    ),
    pytest.param(
        _set("bands", [{"name": "Good", "min": 40}, {"name": "Poor", "min": 60}]),
        "bands[1].min",
        "band minimums must strictly decrease; 60 follows 40",
        id="bands-misordered",
    ),
    pytest.param(
        _set("bands", [{"name": "Good", "min": 40}, {"name": "Poor", "min": 40}]),
        "bands[1].min",
        "must strictly decrease",
        id="bands-equal",
    ),
    pytest.param(
        _set("bands", [{"name": "Good", "min": 70}, {"name": "Poor", "min": 10}]),
        "bands[1].min",
        "the last band must start at 0",
        id="bands-not-ending-at-zero",
    ),
    pytest.param(
        _set("bands", [{"name": "Good", "min": 70}, {"name": "Good", "min": 0}]),
        "bands[1].name",
        "band name 'Good' is used twice",
        id="bands-duplicate-name",
    ),
    pytest.param(
        _set("bands", [{"name": "Unknown", "min": 0}]),
        "bands[0].name",
        "band name 'Unknown' is reserved",
        id="bands-unknown-name",
    ),
    pytest.param(
        _set("bands", [{"name": "Top", "min": 101}, {"name": "Low", "min": 0}]),
        "bands[0].min",
        "expected a number from 0 to 100; got 101",
        id="bands-above-100",
    ),
    pytest.param(
        _set("components.1.name", "commitment"),
        "components[1].name",
        "component name 'commitment' is used twice",
        id="duplicate-component",
    ),
    pytest.param(
        _set(f"{M01}.name", "contract"),
        "components[0].measures[1]",
        "measure name 'contract' is used twice in component 'commitment'",
        id="duplicate-measure",
    ),
    pytest.param(
        _set("components.0.name", "score"),
        "components[0].name",
        "component name 'score' is reserved",
        id="reserved-component-name",
    ),
    pytest.param(
        _set("min_coverage", 1.5),
        "min_coverage",
        "expected a number from 0 to 1; got 1.5",
        id="min-coverage-above-1",
    ),
    pytest.param(
        _set("min_coverage", -0.1),
        "min_coverage",
        "expected a number from 0 to 1; got -0.1",
        id="min-coverage-negative",
    ),
    pytest.param(
        _set("applies_to", {"segments": []}),
        "applies_to.segments",
        "expected a non-empty list",
        id="applies-to-empty",
    ),
    pytest.param(
        _set("description", 5),
        "description",
        "expected text; got 5",
        id="description-not-text",
    ),
]


@pytest.mark.parametrize(("changes", "field", "message"), INVALID)
def test_parse_profile_invalid(changes, field, message):
    with pytest.raises(ProfileError, match=message) as info:
        _parse(changes)
    assert info.value.field == field
    assert str(info.value).startswith(f"p.yaml: {field}: ")


def test_parse_profile_yaml_syntax_error_names_line():
    text = "name: broken\ncomponents:\n  - name: [unclosed\n    weight: 1\n"

    with pytest.raises(ProfileError, match=r"invalid YAML at line \d+, column \d+"):
        parse_profile(text, path="broken.yaml")


def test_parse_profile_yaml_duplicate_key():
    text = "name: one\nname: two\ncomponents: []\n"

    with pytest.raises(ProfileError, match="line 2.*duplicate key 'name'"):
        parse_profile(text)


@pytest.mark.parametrize("text", ["", "   \n", "# only a comment\n"])
def test_parse_profile_empty(text):
    with pytest.raises(ProfileError, match="the profile is empty"):
        parse_profile(text, path="empty.yaml")


def test_parse_profile_not_a_mapping():
    with pytest.raises(ProfileError, match="expected a mapping of keys to values"):
        parse_profile("- name: x\n")


def _problems(changes) -> ProfileError:
    """Return the ProfileError that parsing the changed hand profile raises."""
    with pytest.raises(ProfileError) as info:
        _parse(changes)
    return info.value


def test_parse_profile_huge_weights_listed():
    error = _problems(
        lambda raw: [_set(f"components.{i}.weight", 1.0e308)(raw) for i in (0, 1)]
    )

    assert [field for field, _ in error.problems] == [
        "components[0].weight",
        "components[1].weight",
    ]
    assert error.field == "components[0].weight"
    assert "expected a number from 0 to 1,000,000; got 1e+308" in error.problems[0][1]


RANGES = [
    pytest.param(
        "components.0.weight",
        1_000_001,
        "a number from 0 to 1,000,000",
        id="weight-above-max",
    ),
    pytest.param(
        f"{M01}.weight", 10**400, "a number from 0 to 1,000,000", id="huge-int-weight"
    ),
    pytest.param(
        f"{M01}.weight",
        math.nan,
        "a finite number from 0 to 1,000,000",
        id="nan-weight",
    ),
    pytest.param(
        f"{M10}.thresholds.good",
        math.inf,
        "a finite number; got inf",
        id="infinite-threshold",
    ),
    pytest.param(
        f"{M01}.linear.worst",
        -math.inf,
        "a finite number; got -inf",
        id="infinite-linear-end",
    ),
    pytest.param(
        f"{M00}.category.points.One year",
        1e308,
        "a number from 0 to 100",
        id="category-points-1e308",
    ),
    pytest.param(
        f"{M11}.percentile.min_peers",
        1_000_001,
        "a number from 1 to 1,000,000",
        id="min-peers-above-max",
    ),
    pytest.param(
        "bands.0.min", math.inf, "a finite number from 0 to 100", id="infinite-band-min"
    ),
]


@pytest.mark.parametrize(("path", "value", "expected"), RANGES)
def test_parse_profile_number_out_of_range(path, value, expected):
    def changes(raw):
        raw["bands"] = [{"name": "Good", "min": 70}, {"name": "Poor", "min": 0}]
        _set(path, value)(raw)

    error = _problems(changes)

    assert len(error.problems) == 1
    assert error.field == re.sub(r"\.(\d+)", r"[\1]", path)
    assert f"expected {expected}" in str(error)


def test_parse_profile_max_weight_accepted():
    raw = copy.deepcopy(BASE)
    raw["components"][0]["weight"] = 1_000_000
    raw["components"][1]["weight"] = 1_000_000
    profile = parse_profile(yaml.safe_dump(raw))

    assert profile.nominal_weights() == pytest.approx((0.375, 0.125, 0.25, 0.25))


def test_parse_profile_linear_span_overflow():
    change = _set(f"{M01}.linear", {"worst": -1.0e308, "best": 1.0e308})

    with pytest.raises(ProfileError, match="too far apart") as info:
        _parse(change)
    assert info.value.field == "components[0].measures[1].linear.best"


def test_parse_profile_scientific_notation_text():
    text = HAND_PROFILE.replace("weight: 60", "weight: 6e1").replace(
        "weight: 40", "weight: 4E+1"
    )
    profile = parse_profile(text)

    assert [c.weight for c in profile.components] == [60.0, 40.0]
    assert profile.hash == parse_profile(HAND_PROFILE).hash


def test_parse_profile_scientific_notation_range():
    text = HAND_PROFILE.replace("weight: 60", "weight: 1e308")

    with pytest.raises(ProfileError) as info:
        parse_profile(text, path="p.yaml")
    assert info.value.field == "components[0].weight"
    assert "expected a number from 0 to 1,000,000; got '1e308'" in str(info.value)


def test_parse_profile_bad_name_describes_characters():
    text = HAND_PROFILE.replace("name: hand", 'name: "bad name!"')

    with pytest.raises(ProfileError) as info:
        parse_profile(text, path="p.yaml")
    assert str(info.value) == (
        "p.yaml: name: invalid value 'bad name!': expected only lower-case letters, "
        "digits, '-' and '_'. Write it as 'bad-name', for example."
    )


def test_parse_profile_yaml_error_message():
    text = "name: broken\ncomponents:\n  - name: [unclosed\n"

    with pytest.raises(ProfileError) as info:
        parse_profile(text, path="broken.yaml")
    message = str(info.value)
    assert message.startswith(
        "broken.yaml: invalid YAML at line 4, column 1: expected ',' or ']', but got "
        "the end of the file (while parsing a flow sequence that starts at line 3, "
        "column 11). Fix the syntax there"
    )
    assert "\n" not in message
    assert "^" not in message


def test_parse_profile_lists_every_problem():
    def changes(raw):
        raw["name"] = "Bad Name"
        raw["min_coverag"] = 0.5
        _measure(raw, 0, 1)["weight"] = -1
        _measure(raw, 1, 0)["thresholds"]["good"] = 100
        _measure(raw, 1, 1)["percentile"]["min_peers"] = 0.5

    error = _problems(changes)

    assert error.problems == [
        ("min_coverag", error.problems[0][1]),
        ("name", error.problems[1][1]),
        ("components[0].measures[1].weight", error.problems[2][1]),
        ("components[1].measures[0].thresholds.good", error.problems[3][1]),
        ("components[1].measures[1].percentile.min_peers", error.problems[4][1]),
    ]
    assert error.field == "min_coverag"
    lines = str(error).splitlines()
    assert lines[0] == (
        "p.yaml: found 5 problems. Fix each of them and load the profile again:"
    )
    assert lines[1:] == [f"{field}: {message}" for field, message in error.problems]
    assert lines[3].startswith(
        "components[0].measures[1].weight: expected a number from 0 to 1,000,000"
    )


def test_parse_profile_problem_list_capped():
    def changes(raw):
        measures = _measure(raw, 0, 1)
        raw["components"][0]["measures"] = [
            {**measures, "name": f"m{i}", "weight": -i - 1} for i in range(25)
        ]

    error = _problems(changes)

    assert len(error.problems) == 20
    assert error.problems[19][0] == "components[0].measures[19].weight"
    assert str(error).startswith(
        "p.yaml: found 25 problems, of which the first 20 are listed."
    )


def test_parse_profile_missing_key_once():
    error = _problems(_set(f"{M01}.linear", {}))

    assert error.problems == [
        (
            "components[0].measures[1].linear.worst",
            "missing required key 'worst'. Add 'worst: <number>' to this entry.",
        ),
        (
            "components[0].measures[1].linear.best",
            "missing required key 'best'. Add 'best: <number>' to this entry.",
        ),
    ]


def test_parse_profile_no_zero_weight_after_failure():
    def changes(raw):
        raw["components"][0]["weight"] = 0
        raw["components"][1]["weight"] = "heavy"

    error = _problems(changes)

    assert [field for field, _ in error.problems] == ["components[1].weight"]


def test_parse_profile_band_problems_listed():
    bands = [
        {"name": "Unknown", "min": 70},
        {"name": "Low", "min": 80},
        {"name": "Low", "min": 10},
    ]
    error = _problems(_set("bands", bands))

    assert [field for field, _ in error.problems] == [
        "bands[0].name",
        "bands[1].min",
        "bands[2].name",
        "bands[2].min",
    ]


def test_check_metrics_lists_every_unknown():
    profile = parse_profile(HAND_PROFILE, path="hand.yaml")

    with pytest.raises(ProfileError) as info:
        profile.check_metrics({"contract", "days_idle"})
    assert [field for field, _ in info.value.problems] == [
        "components[0].measures[1].metric",
        "components[1].measures[1].metric",
    ]
    assert "unknown metric 'active_users'" in str(info.value)


def test_profile_error_single_problem_default():
    error = ProfileError("bad value.", path="p.yaml", field="name")

    assert str(error) == "p.yaml: name: bad value."
    assert error.problems == [("name", "bad value.")]
    assert error.field == "name"


@pytest.mark.parametrize(
    ("value", "expected"),
    [("1" + "0" * 5000, "Exceeds the limit"), ("2024-13-45", "month must be in")],
)
def test_parse_profile_unconstructable_value(value, expected):
    text = HAND_PROFILE.replace("weight: 60", f"weight: {value}")

    with pytest.raises(ProfileError, match="invalid YAML value") as info:
        parse_profile(text, path="p.yaml")
    assert expected in str(info.value)
    assert info.value.path is not None
