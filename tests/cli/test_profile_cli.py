"""`healthscore profile check` and `profile diff` on real stores."""

import datetime as dt
import json
import textwrap

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score
from typer.testing import CliRunner

from healthscore.cli import app
from healthscore.demo.run import DEMO_DIR, TELCO_FILE
from healthscore.ingest import ingest_file, load_mapping
from healthscore.metrics import compute_metrics
from healthscore.scoring import load_profile, score_accounts
from healthscore.store import Store

TELCO_PROFILE = DEMO_DIR / "profiles" / "telco.yaml"
AS_OF = dt.date(2026, 12, 1)


def _run(*args, store=None):
    extra = [] if store is None else ["--store", str(store)]
    return CliRunner().invoke(app, [*args, *extra], env={"COLUMNS": "220"})


@pytest.fixture(scope="module")
def telco(tmp_path_factory):
    """A store with the Telco accounts, and a copy of its profile with new weights."""
    folder = tmp_path_factory.mktemp("profile_cli")
    with Store.open(folder / "telco.duckdb") as store:
        mapping = load_mapping(DEMO_DIR / "mappings" / "telco.yaml")
        ingest_file(store, "accounts", TELCO_FILE, mapping)
    changed = folder / "telco-v2.yaml"
    changed.write_text(TELCO_PROFILE.read_text().replace("weight: 40", "weight: 20"))
    return folder / "telco.duckdb", changed


def test_check_valid_profile(tmp_path):
    result = _run("profile", "check", str(TELCO_PROFILE))

    assert result.exit_code == 0, result.output
    assert "telco-retention" in result.output
    assert load_profile(TELCO_PROFILE).hash[:12] in result.output
    assert "default (applies_to segments ['Telco'])" in result.output
    assert "9 (commitment: contract, tenure_months;" in result.output
    assert "pass --store to check them" in result.output


def test_check_lists_every_problem(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "name: Bad Name\ncomponents:\n  - name: usage\n    weight: -1\n"
        "    measures:\n      - metric: active_days_30d\n"
        "        linear: {worst: 0, best: 20}\n"
    )

    result = _run("profile", "check", str(bad))

    assert result.exit_code == 3
    assert "is invalid (2 problems)" in result.output
    assert f"{bad}: name: invalid value 'Bad Name'" in result.output
    assert f"{bad}: components[0].weight:" in result.output


def test_check_missing_file_exits_3(tmp_path):
    result = _run("profile", "check", str(tmp_path / "absent.yaml"))

    assert result.exit_code == 3
    assert "cannot read the profile set file" in result.output


def test_check_set_against_store(telco, tmp_path):
    store, _ = telco
    profile_set = tmp_path / "set.yaml"
    profile_set.write_text(
        textwrap.dedent(
            f"""\
            name: telco-set
            profiles:
              - profile: {TELCO_PROFILE}
                when: {{arr_at_least: 1000}}
              - profile:
                  name: small
                  components:
                    - name: price
                      weight: 1
                      measures:
                        - metric: contract
                          linear: {{worst: 0, best: 1}}
                        - metric: monthly_chargs
                          linear: {{worst: 110, best: 20}}
            """
        )
    )

    offline = _run("profile", "check", str(profile_set))
    result = _run("profile", "check", str(profile_set), store=store)

    assert offline.exit_code == 0, offline.output
    assert "arr >= 1000" in offline.output
    assert result.exit_code == 3
    assert "profiles[1].profile.components[0].measures[0].linear: metric " in (
        result.output
    )
    assert "'contract' holds text" in result.output
    assert "profiles[1].profile.components[0].measures[1].metric: unknown " in (
        result.output
    )
    assert "Did you mean 'monthly_charges'" in result.output


def test_check_profile_against_store(telco):
    store, _ = telco

    result = _run("profile", "check", str(TELCO_PROFILE), store=store)

    assert result.exit_code == 0, result.output
    assert "the store can compute all 9 metrics it uses" in result.output


def _independent_diff(store_path, old_file, new_file):
    """Score the Telco metrics with each profile directly, as the diff should."""
    old, new = load_profile(old_file), load_profile(new_file)
    names = list(dict.fromkeys([*old.metrics, *new.metrics]))
    with Store.open(store_path, create=False) as store:
        metrics = compute_metrics(store, AS_OF, names, segments=["Telco"])
        churned = store.table("accounts").select("account_id", "churned").to_pandas()
    old_scores = score_accounts(metrics, old).scores.set_index("account_id")
    new_scores = score_accounts(metrics, new).scores.set_index("account_id")
    frame = pd.DataFrame(
        {
            "old_score": old_scores["score"],
            "old_band": old_scores["band"],
            "new_score": new_scores["score"],
            "new_band": new_scores["band"],
        }
    )
    frame["churned"] = frame.index.map(churned.set_index("account_id")["churned"])
    return frame


def test_diff_json_matches_independent_scoring(telco, tmp_path):
    store, changed = telco
    out = tmp_path / "diff.json"

    result = _run(
        "profile",
        "diff",
        str(TELCO_PROFILE),
        str(changed),
        "--as-of",
        AS_OF.isoformat(),
        "--limit",
        "5",
        "--json",
        str(out),
        store=store,
    )

    assert result.exit_code == 0, result.output
    document = json.loads(out.read_text())
    expected = _independent_diff(store, TELCO_PROFILE, changed)
    moved = expected[expected["old_band"] != expected["new_band"]]
    crosstab = pd.crosstab(expected["old_band"], expected["new_band"])
    assert document["accounts"] == len(expected)
    assert document["moved_total"] == len(moved)
    for old_band, row in crosstab.iterrows():
        for new_band, count in row.items():
            assert document["transitions"][old_band][new_band] == count

    changes = (moved["new_score"] - moved["old_score"]).abs()
    assert [row["account_id"] for row in document["moved"]] == list(
        changes.sort_values(ascending=False, kind="stable").index[:5]
    )
    top = document["moved"][0]
    assert top["old_score"] == pytest.approx(
        expected.loc[top["account_id"], "old_score"]
    )
    assert top["new_score"] == pytest.approx(
        expected.loc[top["account_id"], "new_score"]
    )

    churned = expected["churned"].astype(bool)
    for side in ("old", "new"):
        auc = roc_auc_score(churned, 100.0 - expected[f"{side}_score"])
        assert document["auc"][f"paired_{side}"] == pytest.approx(auc, abs=1e-12)
    shares = {row["band"]: row for row in document["band_shares"]}
    good = (expected["new_band"] == "Good").mean()
    assert shares["Good"]["new_share"] == pytest.approx(good)
    assert document["distribution"]["median"]["old"] == pytest.approx(
        np.median(expected["old_score"])
    )


def test_diff_prints_tables_and_undated_churn(telco):
    store, changed = telco

    result = _run(
        "profile",
        "diff",
        str(TELCO_PROFILE),
        str(changed),
        "--as-of",
        "2026-12-01",
        store=store,
    )

    assert result.exit_code == 0, result.output
    assert "Bands: old in rows, new in columns" in result.output
    assert "Score distribution" in result.output
    assert "Band shares" in result.output
    assert "ROC AUC against churn on the 7,043 accounts both sides scored" in (
        result.output
    )
    assert "1,869 accounts are marked churned with no churned_at date" in result.output
    assert "largest score change first" in result.output


def test_diff_counts_churn_after_as_of_only(tmp_path):
    accounts = tmp_path / "accounts.csv"
    accounts.write_text(
        textwrap.dedent(
            """\
            account_id,segment,arr,churned,churned_at
            A1,SMB,1000,true,2024-05-01T00:00:00Z
            A2,SMB,2000,true,
            A3,SMB,3000,false,
            A4,SMB,4000,true,2024-03-01T00:00:00Z
            A5,SMB,5000,,
            """
        )
    )
    profiles = []
    for name, best in (("old", 5000), ("new", 2500)):
        path = tmp_path / f"{name}.yaml"
        path.write_text(
            f"name: {name}\ncomponents:\n  - name: size\n    weight: 1\n"
            f"    measures:\n      - metric: arr\n"
            f"        linear: {{worst: 0, best: {best}}}\n"
        )
        profiles.append(str(path))
    store = tmp_path / "s.duckdb"
    assert _run("ingest", "accounts", str(accounts), store=store).exit_code == 0
    out = tmp_path / "diff.json"

    result = _run(
        "profile",
        "diff",
        *profiles,
        "--as-of",
        "2024-03-31",
        "--json",
        str(out),
        store=store,
    )

    assert result.exit_code == 0, result.output
    document = json.loads(out.read_text())
    # A4 churned before the as-of date, so it is not a customer then.
    assert document["accounts"] == 4
    assert document["outcomes"] == {
        "churned_after_as_of": 1,
        "churned_without_date": 1,
        "retained": 1,
        "unknown": 1,
    }
    assert "1 accounts churned after 2024-03-31" in result.output
    # arr / 5000 * 100 then arr / 2500 * 100, capped at 100: A1 20 -> 40 (Poor ->
    # Average), A2 40 -> 80 (Average -> Good), A3 60 -> 100 (Average -> Good).
    assert document["transitions"]["Average"]["Good"] == 2
    assert document["transitions"]["Poor"]["Average"] == 1
    assert [row["account_id"] for row in document["moved"]] == ["A2", "A3", "A1"]


def test_diff_unknown_metric_exits_3(telco, tmp_path):
    store, _ = telco
    typo = tmp_path / "typo.yaml"
    typo.write_text(
        TELCO_PROFILE.read_text().replace("metric: tenure", "metric: tenur")
    )

    result = _run("profile", "diff", str(TELCO_PROFILE), str(typo), store=store)

    assert result.exit_code == 3
    assert "components[0].measures[1].metric: unknown metric 'tenur'" in result.output
