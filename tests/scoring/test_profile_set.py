from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from healthscore.exceptions import ConfigError, InputDataError, ProfileError
from healthscore.metrics import available_metrics
from healthscore.profiles import PROFILE_DIR
from healthscore.scoring import parse_profile, score_accounts
from healthscore.scoring.profile_set import (
    AssignmentRule,
    ProfileSet,
    as_profile_set,
    assign_profiles,
    load_profile_set,
    parse_profile_set,
    score_profile_set,
)
from healthscore.store import Store

AS_OF = dt.date(2025, 3, 31)  # ages are measured at 2025-04-01T00:00Z


def _profile(name: str, best: float, extra: str = "") -> str:
    """Return a profile whose score is ``value / best * 100``, capped at 100."""
    return f"""name: {name}
{extra}components:
  - name: usage
    weight: 1
    measures:
      - metric: value
        linear: {{worst: 0, best: {best}}}
"""


def _indent(text: str, spaces: int) -> str:
    return "\n".join(" " * spaces + line for line in text.splitlines())


def _set_text(entries: list[tuple[str, str | None]]) -> str:
    """Build a set file of inline profiles from ``(profile text, when)`` pairs."""
    lines = ["profiles:"]
    for profile, when in entries:
        lines.append("  - profile:")
        lines.append(_indent(profile, 6))
        if when is not None:
            lines.append(f"    when: {when}")
    return "\n".join(lines) + "\n"


ONBOARDING = _profile("onboarding", 50)
ENTERPRISE = _profile("enterprise", 200)
DEFAULT = _profile("default", 100)

LIFECYCLE = _set_text(
    [
        (ONBOARDING, "{age_days_below: 90}"),
        (ENTERPRISE, "{segment: [enterprise], plan: [enterprise, premium]}"),
        (DEFAULT, None),
    ]
)


def _utc(*args: int) -> pd.Timestamp:
    return pd.Timestamp(dt.datetime(*args, tzinfo=dt.UTC))


def _accounts() -> pd.DataFrame:
    old = _utc(2024, 1, 1)
    return pd.DataFrame(
        {
            "account_id": ["a1", "a2", "a3", "a4", "a5", "a6", "a7"],
            "segment": ["enterprise", "enterprise", "enterprise", "smb", "enterprise"]
            + [None, None],
            "plan": ["premium", "premium", "basic", "premium", "enterprise"]
            + [None, None],
            # a6 is 89 days old at the end of AS_OF and a7 exactly 90.
            "created_at": [
                _utc(2025, 3, 1),
                old,
                old,
                old,
                pd.NaT,
                _utc(2025, 1, 2),
                _utc(2025, 1, 1),
            ],
            "arr": [200_000.0, 90_000.0, 5_000.0, np.nan, 100_000.0, 1_000.0, 0.0],
            "value": [25.0, 100.0, 40.0, 70.0, 50.0, 10.0, 30.0],
        }
    )


def _names(assignments: pd.Series) -> list[object]:
    return assignments.tolist()


def test_assign_profiles_first_match_wins():
    profile_set = parse_profile_set(LIFECYCLE)

    assignments = assign_profiles(_accounts(), profile_set, AS_OF)

    # a1 is young and enterprise: the onboarding rule comes first. a3's plan and
    # a4's segment fail the enterprise rule. a5 has no creation time, so no age.
    assert _names(assignments) == [
        "onboarding",
        "enterprise",
        "default",
        "default",
        "enterprise",
        "onboarding",
        "default",
    ]
    assert list(assignments.index) == ["a1", "a2", "a3", "a4", "a5", "a6", "a7"]
    assert assignments.index.name == "account_id"
    assert assignments.name == "profile"


def test_assign_profiles_rule_order_matters():
    reordered = _set_text(
        [
            (ENTERPRISE, "{segment: [enterprise], plan: [enterprise, premium]}"),
            (ONBOARDING, "{age_days_below: 90}"),
            (DEFAULT, None),
        ]
    )

    assignments = assign_profiles(_accounts(), parse_profile_set(reordered), AS_OF)

    assert assignments["a1"] == "enterprise"
    assert assignments["a6"] == "onboarding"


def test_assign_profiles_default_catches_rest():
    only_default = parse_profile_set(_set_text([(DEFAULT, None)]))

    assignments = assign_profiles(_accounts(), only_default, as_of=None)

    assert set(assignments) == {"default"}


def test_assign_profiles_age_boundaries():
    text = _set_text(
        [
            (ONBOARDING, "{age_days_below: 90}"),
            (ENTERPRISE, "{age_days_at_least: 90, age_days_below: 91}"),
            (DEFAULT, None),
        ]
    )

    assignments = assign_profiles(_accounts(), parse_profile_set(text), AS_OF)

    assert assignments["a6"] == "onboarding"
    assert assignments["a7"] == "enterprise"
    assert assignments["a5"] == "default"


def test_assign_profiles_age_counts_whole_seconds():
    # 2025-01-01T00:00:00.5Z is 89.99999421... days before the period end, which
    # truncated to whole seconds, as tenure_days is, is exactly 90 days.
    accounts = pd.DataFrame(
        {
            "account_id": ["x"],
            "created_at": [_utc(2025, 1, 1) + pd.Timedelta(milliseconds=500)],
        }
    )
    profile_set = parse_profile_set(
        _set_text([(ONBOARDING, "{age_days_below: 90}"), (DEFAULT, None)])
    )

    assert assign_profiles(accounts, profile_set, AS_OF)["x"] == "default"


def test_assign_profiles_arr_bounds():
    text = _set_text(
        [
            (ENTERPRISE, "{arr_at_least: 100000}"),
            (ONBOARDING, "{arr_below: 1000}"),
            (DEFAULT, None),
        ]
    )

    assignments = assign_profiles(_accounts(), parse_profile_set(text), as_of=None)

    # a5 has exactly 100,000 and a6 exactly 1,000; a4's ARR is missing.
    assert _names(assignments) == [
        "enterprise",
        "default",
        "default",
        "default",
        "enterprise",
        "default",
        "onboarding",
    ]


def test_assign_profiles_single_segment_text():
    text = _set_text([(ENTERPRISE, "{segment: smb}"), (DEFAULT, None)])

    assignments = assign_profiles(_accounts(), parse_profile_set(text), as_of=None)

    assert assignments["a4"] == "enterprise"
    assert list(assignments == "enterprise").count(True) == 1


def test_assign_profiles_applies_to_falls_through():
    smb_only = _profile("smb", 10, "applies_to: {segments: [smb]}\n")
    text = _set_text(
        [(smb_only, "{plan: [premium]}"), (ENTERPRISE, "{plan: [premium]}")]
        + [(DEFAULT, None)]
    )

    assignments = assign_profiles(_accounts(), parse_profile_set(text), as_of=None)

    assert assignments["a4"] == "smb"
    assert assignments["a1"] == "enterprise"
    assert assignments["a2"] == "enterprise"


def test_assign_profiles_single_profile_keeps_applies_to():
    profile = parse_profile(_profile("smb", 10, "applies_to: {segments: [smb]}\n"))

    assignments = assign_profiles(_accounts(), profile, as_of=None)

    assert _names(assignments) == [None, None, None, "smb", None, None, None]


def test_assign_profiles_pandas_string_columns():
    accounts = _accounts().astype({"segment": "str", "plan": "str"})

    assignments = assign_profiles(accounts, parse_profile_set(LIFECYCLE), AS_OF)

    assert assignments["a2"] == "enterprise"
    assert assignments["a7"] == "default"


def test_assign_profiles_missing_column():
    accounts = _accounts().drop(columns=["plan"])

    with pytest.raises(InputDataError, match="no column 'plan'"):
        assign_profiles(accounts, parse_profile_set(LIFECYCLE), AS_OF)


def test_assign_profiles_age_rule_needs_as_of():
    with pytest.raises(ConfigError, match="as_of is missing"):
        assign_profiles(_accounts(), parse_profile_set(LIFECYCLE), None)


def test_assign_profiles_rejects_naive_times():
    accounts = _accounts()
    accounts["created_at"] = accounts["created_at"].dt.tz_localize(None)

    with pytest.raises(InputDataError, match="timezone-aware"):
        assign_profiles(accounts, parse_profile_set(LIFECYCLE), AS_OF)


def test_assign_profiles_rejects_repeated_ids():
    accounts = pd.concat([_accounts(), _accounts().iloc[:1]])

    with pytest.raises(InputDataError, match="more than once"):
        assign_profiles(accounts, parse_profile_set(LIFECYCLE), AS_OF)


def test_assign_profiles_other_timezone():
    accounts = _accounts()
    accounts["created_at"] = accounts["created_at"].dt.tz_convert("Asia/Tokyo")

    assignments = assign_profiles(accounts, parse_profile_set(LIFECYCLE), AS_OF)

    assert assignments["a6"] == "onboarding"
    assert assignments["a7"] == "default"


def test_score_profile_set_hand_scores():
    accounts = _accounts()
    profile_set = parse_profile_set(LIFECYCLE)
    assignments = assign_profiles(accounts, profile_set, AS_OF)

    result = score_profile_set(accounts, profile_set, assignments)
    scores = result.scores

    # onboarding: value / 50, enterprise: value / 200, default: value / 100.
    assert list(scores["account_id"]) == list(accounts["account_id"])
    assert list(scores["profile"]) == _names(assignments)
    assert list(scores["score"]) == pytest.approx(
        [50.0, 50.0, 40.0, 70.0, 25.0, 20.0, 30.0]
    )
    assert list(scores["band"]) == [
        "Average",
        "Average",
        "Average",
        "Good",
        "Poor",
        "Poor",
        "Poor",
    ]
    assert len(result.unscored) == 0
    assert set(result.results) == {"onboarding", "enterprise", "default"}


def test_score_profile_set_long_tables_in_account_order():
    accounts = _accounts()
    profile_set = parse_profile_set(LIFECYCLE)

    result = score_profile_set(
        accounts, profile_set, assign_profiles(accounts, profile_set, AS_OF)
    )

    assert list(result.measures["account_id"]) == list(accounts["account_id"])
    assert list(result.components["account_id"]) == list(accounts["account_id"])
    assert list(result.measures.columns[:2]) == ["account_id", "profile"]
    assert "profile" not in result.results["default"].scores.columns


def test_score_profile_set_matches_per_profile():
    accounts = _accounts()
    profile_set = parse_profile_set(LIFECYCLE)
    assignments = assign_profiles(accounts, profile_set, AS_OF)

    result = score_profile_set(accounts, profile_set, assignments)

    for profile in profile_set.profiles:
        group = accounts[assignments.to_numpy() == profile.name]
        expected = score_accounts(group, profile).scores
        actual = result.scores[result.scores["profile"] == profile.name]
        assert list(actual["score"]) == list(expected["score"])
        assert list(actual["account_id"]) == list(expected["account_id"])


def test_score_profile_set_single_profile_like_engine():
    profile = parse_profile(_profile("smb", 100, "applies_to: {segments: [smb]}\n"))
    accounts = _accounts()

    result = score_profile_set(accounts, profile)
    expected = score_accounts(accounts, profile).scores

    assert list(result.scores["account_id"]) == list(expected["account_id"])
    assert list(result.scores["score"]) == list(expected["score"])
    assert list(result.unscored) == ["a1", "a2", "a3", "a5", "a6", "a7"]


def test_score_profile_set_nothing_scored():
    profile = parse_profile(_profile("none", 100, "applies_to: {segments: [x]}\n"))

    result = score_profile_set(_accounts(), profile)

    assert len(result.scores) == 0
    assert list(result.scores.columns[:3]) == ["account_id", "profile", "score"]
    assert len(result.unscored) == 7
    assert result.results == {}


def test_score_profile_set_rejects_unknown_profile():
    accounts = _accounts()
    assignments = pd.Series(["other"] * 7, index=accounts["account_id"])

    with pytest.raises(InputDataError, match="'other'"):
        score_profile_set(accounts, parse_profile_set(LIFECYCLE), assignments)


def test_load_profile_set_relative_files(tmp_path):
    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles" / "onboarding.yaml").write_text(ONBOARDING)
    (tmp_path / "profiles" / "default.yaml").write_text(DEFAULT)
    set_file = tmp_path / "lifecycle.yaml"
    set_file.write_text(
        "description: Young accounts first.\n"
        "profiles:\n"
        "  - profile: profiles/onboarding.yaml\n"
        "    when: {age_days_below: 90}\n"
        "  - profile: profiles/default.yaml\n"
    )

    profile_set = load_profile_set(set_file)

    assert profile_set.name == "lifecycle"
    assert profile_set.description == "Young accounts first."
    assert [p.name for p in profile_set.profiles] == ["onboarding", "default"]
    assert profile_set.entries[0].reference == "profiles/onboarding.yaml"
    assert profile_set.entries[0].when == AssignmentRule(age_days_below=90)
    assert profile_set.default == parse_profile(DEFAULT)
    assert profile_set.source == set_file
    assert profile_set.profiles[0].source == tmp_path / "profiles" / "onboarding.yaml"


def test_load_profile_set_single_profile_file(tmp_path):
    path = tmp_path / "one.yaml"
    path.write_text(DEFAULT)

    profile_set = load_profile_set(path)

    assert profile_set.name == "default"
    assert len(profile_set.entries) == 1
    assert profile_set.entries[0].when is None
    assert profile_set.default == parse_profile(DEFAULT)
    assert profile_set == as_profile_set(parse_profile(DEFAULT))


def test_load_profile_set_same_profile_twice(tmp_path):
    (tmp_path / "e.yaml").write_text(ENTERPRISE)
    text = (
        "profiles:\n"
        "  - {profile: e.yaml, when: {segment: [enterprise]}}\n"
        "  - {profile: e.yaml, when: {arr_at_least: 100000}}\n"
        f"  - profile:\n{_indent(DEFAULT, 6)}\n"
    )

    profile_set = parse_profile_set(text, path=tmp_path / "set.yaml")
    assignments = assign_profiles(_accounts(), profile_set, as_of=None)

    assert [p.name for p in profile_set.profiles] == ["enterprise", "default"]
    assert assignments["a4"] == "default"
    assert assignments["a3"] == "enterprise"


def test_parse_profile_set_inline_values_read_back():
    # "Yes" and "No" must stay text when the inline profile is parsed again.
    text = (
        "profiles:\n"
        "  - profile:\n"
        "      name: flags\n"
        "      components:\n"
        "        - name: c\n"
        "          weight: 1\n"
        "          measures:\n"
        "            - metric: flag\n"
        '              category: {points: {"Yes": 100, "No": 0, 1e3: 5}}\n'
    )

    profile = parse_profile_set(text).default
    scheme = profile.components[0].measures[0].scheme

    assert dict(scheme.points) == {"Yes": 100.0, "No": 0.0, "1e3": 5.0}


def _problems(text: str, tmp_path) -> dict[str, str]:
    with pytest.raises(ProfileError) as caught:
        parse_profile_set(text, path=tmp_path / "set.yaml")
    assert caught.value.path == tmp_path / "set.yaml"
    return dict(caught.value.problems)


def test_parse_profile_set_reports_every_problem(tmp_path):
    (tmp_path / "broken.yaml").write_text(
        _profile("broken", 10).replace("weight: 1", "weight: -1")
    )
    text = (
        "name: Life Cycle\n"
        "profiles:\n"
        "  - profile: missing.yaml\n"
        "    when: {segmnt: [smb], arr_at_least: 5000, arr_below: 100}\n"
        "  - profile: broken.yaml\n"
        "    when: {plan: [pro, 7]}\n"
        f"  - profile:\n{_indent(DEFAULT.replace('best: 100', 'best: x'), 6)}\n"
        "  - profile: other.yaml\n"
        "    when: {}\n"
    )

    problems = _problems(text, tmp_path)

    assert set(problems) == {
        "name",
        "profiles[0].profile",
        "profiles[0].when.segmnt",
        "profiles[0].when.arr_below",
        "profiles[1].profile.components[0].weight",
        "profiles[1].when.plan[1]",
        "profiles[2]",
        "profiles[2].profile.components[0].measures[0].linear.best",
        "profiles[3].profile",
        "profiles[3].when",
    }
    assert "'missing.yaml' not found" in problems["profiles[0].profile"]
    assert "Did you mean 'segment'" in problems["profiles[0].when.segmnt"]
    assert (
        "in profile file 'broken.yaml'"
        in (problems["profiles[1].profile.components[0].weight"])
    )
    assert "only the last entry" in problems["profiles[2]"]
    assert "Add a last entry without 'when'" in problems["profiles[3].when"]


def test_parse_profile_set_empty_rule(tmp_path):
    text = _set_text([(ONBOARDING, "{}"), (DEFAULT, None)])

    problems = _problems(text, tmp_path)

    assert "the rule is empty" in problems["profiles[0].when"]


def test_parse_profile_set_repeated_rule(tmp_path):
    text = _set_text(
        [(ONBOARDING, "{plan: [pro]}"), (ENTERPRISE, "{plan: [pro]}"), (DEFAULT, None)]
    )

    problems = _problems(text, tmp_path)

    assert list(problems) == ["profiles[1].when"]
    assert "never matches" in problems["profiles[1].when"]


def test_parse_profile_set_name_clash(tmp_path):
    other_default = _profile("default", 20)
    text = _set_text([(DEFAULT, "{plan: [pro]}"), (other_default, None)])

    problems = _problems(text, tmp_path)

    assert list(problems) == ["profiles[1].profile"]
    assert "Rename one" in problems["profiles[1].profile"]


def test_parse_profile_set_negative_bound(tmp_path):
    text = _set_text([(ONBOARDING, "{age_days_below: -3}"), (DEFAULT, None)])

    problems = _problems(text, tmp_path)

    assert "at least 0" in problems["profiles[0].when.age_days_below"]


def test_parse_profile_set_nested_set(tmp_path):
    (tmp_path / "inner.yaml").write_text(_set_text([(DEFAULT, None)]))
    text = "profiles:\n  - profile: inner.yaml\n"

    problems = _problems(text, tmp_path)

    assert "cannot contain another set" in problems["profiles[0].profile"]


def test_parse_profile_set_member_yaml_error(tmp_path):
    (tmp_path / "bad.yaml").write_text("name: [unclosed\n")
    text = "profiles:\n  - profile: bad.yaml\n"

    problems = _problems(text, tmp_path)

    assert (
        "in profile file 'bad.yaml': invalid YAML at line"
        in (problems["profiles[0].profile"])
    )


def test_parse_profile_set_misspelt_profiles_key(tmp_path):
    problems = _problems("profils:\n  - profile: a.yaml\n", tmp_path)

    assert "Did you mean 'profiles'" in problems["profils"]
    assert "profiles" not in problems


def test_parse_profile_set_empty_text():
    with pytest.raises(ProfileError, match="the profile set is empty"):
        parse_profile_set("  \n")


def test_profile_set_hash_ignores_formatting():
    compact = parse_profile_set(LIFECYCLE)
    spaced = parse_profile_set(
        LIFECYCLE.replace("{age_days_below: 90}", "{age_days_below: 90.0}")
    )
    changed = parse_profile_set(
        LIFECYCLE.replace("age_days_below: 90", "age_days_below: 60")
    )

    assert compact.hash == spaced.hash
    assert compact.hash != changed.hash


def test_profile_set_account_columns():
    profile_set = parse_profile_set(LIFECYCLE)

    assert profile_set.account_columns == (
        "account_id",
        "segment",
        "plan",
        "created_at",
    )
    assert as_profile_set(parse_profile(DEFAULT)).account_columns == ("account_id",)


def test_profile_set_check_metrics_names_entry():
    profile_set = parse_profile_set(LIFECYCLE)

    with pytest.raises(ProfileError) as caught:
        profile_set.check_metrics({"values"})

    fields = [name for name, _ in caught.value.problems]
    assert fields == [
        f"profiles[{i}].profile.components[0].measures[0].metric" for i in range(3)
    ]
    assert "Did you mean 'values'" in caught.value.problems[0][1]


def test_assignment_rule_describe():
    rule = AssignmentRule(segments=("smb",), age_days_at_least=90, arr_below=5000)

    assert rule.describe() == "segment in ['smb'] and age_days >= 90 and arr < 5000"


def test_shipped_lifecycle_set_uses_known_metrics():
    profile_set = load_profile_set(PROFILE_DIR / "saas-lifecycle.yaml")

    with Store.open(":memory:") as store:
        profile_set.check_metrics(available_metrics(store))

    assert isinstance(profile_set, ProfileSet)
    assert [p.name for p in profile_set.profiles] == ["onboarding", "saas-default"]
    assert profile_set.entries[0].when == AssignmentRule(age_days_below=90)
