"""`healthscore parents`, `explain --children`, `segments` and `accounts --peers`."""

from __future__ import annotations

import datetime as dt
import shutil
import textwrap

import numpy as np
import pytest
from scipy.stats import percentileofscore
from typer.testing import CliRunner

from healthscore.cli import app
from healthscore.demo.run import DEMO_DIR
from healthscore.history import score_snapshot
from healthscore.ingest import ingest_file
from healthscore.scoring import load_profile
from healthscore.simulate import ENTITY_ORDER, SimulationConfig, simulate
from healthscore.store import Store

# Seed 0 with 150 accounts gives three child accounts, two of them scored on AS_OF.
CONFIG = SimulationConfig(accounts=150, days=60, seed=0)
AS_OF = dt.date(2024, 2, 20)
PROFILE = DEMO_DIR / "profiles" / "simulated.yaml"


@pytest.fixture(scope="module")
def simulated_store(tmp_path_factory):
    folder = tmp_path_factory.mktemp("parents")
    summary = simulate(CONFIG, folder / "sim")
    path = folder / "store.duckdb"
    with Store.open(path) as store:
        for entity in ENTITY_ORDER:
            for file in summary.files.get(entity, ()):
                ingest_file(store, entity, file)
        score_snapshot(store, load_profile(PROFILE), AS_OF)
    return path


@pytest.fixture
def store_path(simulated_store, tmp_path):
    """A copy of the simulated store that a test may change."""
    path = tmp_path / "store.duckdb"
    shutil.copy(simulated_store, path)
    return path


@pytest.fixture
def invoke(store_path):
    runner = CliRunner()

    def run(*args):
        return runner.invoke(
            app, [*args, "--store", str(store_path)], env={"COLUMNS": "200"}
        )

    return run


def _read(path, sql):
    with Store.open(path) as store:
        return store.backend.con.sql(sql).df()


def _update(path, sql):
    with Store.open(path) as store:
        store.backend.con.execute(sql)


def _expected_parents(path):
    """Recompute the ARR-weighted roll-up of direct children with pandas."""
    components = _read(
        path, "select account_id, component, score from score_components"
    )
    accounts = _read(path, "select account_id, parent_id, arr from accounts")
    children = components.merge(accounts, on="account_id").dropna(
        subset=["parent_id", "score"]
    )
    weights = {c.name: c.weight for c in load_profile(PROFILE).components}
    expected = {}
    for parent, rows in children.groupby("parent_id"):
        parts = {
            name: np.average(group["score"], weights=group["arr"])
            for name, group in rows.groupby("component")
        }
        total = sum(weights[name] for name in parts)
        expected[parent] = sum(parts[n] * weights[n] / total for n in parts)
    return expected


def test_parents_rolls_up_and_stores(invoke, store_path):
    result = invoke("parents")

    assert result.exit_code == 0, result.output
    stored = _read(store_path, "select parent_id, score, children from parent_scores")
    expected = _expected_parents(store_path)
    assert sorted(stored["parent_id"]) == sorted(expected)
    for row in stored.itertuples():
        assert row.score == pytest.approx(expected[row.parent_id])
        assert row.parent_id in result.output
    assert "2 of 2 parent accounts as of 2024-02-20" in result.output
    assert "engagement arr_weighted_mean" in result.output


def test_parents_contributions_sum_to_components(invoke, store_path):
    assert invoke("parents").exit_code == 0

    parts = _read(
        store_path,
        "select parent_id, component, sum(contribution) as total "
        "from parent_contributions group by all",
    )
    components = _read(
        store_path, "select parent_id, component, score from parent_components"
    )
    joined = parts.merge(components, on=["parent_id", "component"]).dropna()
    assert len(joined) > 0
    assert joined["total"].to_numpy() == pytest.approx(joined["score"].to_numpy())


def test_explain_children_lists_contributions(invoke, store_path):
    assert invoke("parents").exit_code == 0
    child = _read(
        store_path,
        "select child_id, parent_id from parent_contributions limit 1",
    ).iloc[0]

    result = invoke("explain", child["parent_id"], "--children")

    assert result.exit_code == 0, result.output
    assert f"Parent account {child['parent_id']} as of 2024-02-20" in result.output
    assert child["child_id"] in result.output
    assert "engagement (arr_weighted_mean)" in result.output


def test_explain_children_without_rollup(invoke):
    result = invoke("explain", "A0000096", "--children")

    assert result.exit_code == 5
    assert "no stored roll-up for parent account 'A0000096'" in result.output


def test_parents_nested_levels(invoke, store_path):
    parents = sorted(_expected_parents(store_path))
    # The first parent becomes a child of the second, so the second is level 2.
    _update(
        store_path,
        f"update accounts set parent_id = '{parents[1]}' "
        f"where account_id = '{parents[0]}'",
    )

    result = invoke("parents")

    assert result.exit_code == 0, result.output
    stored = _read(store_path, "select parent_id, level, children from parent_scores")
    levels = dict(zip(stored["parent_id"], stored["level"], strict=True))
    assert levels == {parents[0]: 1, parents[1]: 2}
    top = stored.set_index("parent_id").loc[parents[1]]
    assert top["children"] == 2


def test_parents_rejects_cycle(invoke, store_path):
    parents = sorted(_expected_parents(store_path))
    _update(
        store_path,
        f"update accounts set parent_id = '{parents[0]}' "
        f"where account_id = '{parents[0]}'",
    )

    result = invoke("parents")

    assert result.exit_code == 4
    assert f"{parents[0]} -> {parents[0]}" in result.output


def test_parents_profile_with_hierarchy(invoke, tmp_path):
    text = PROFILE.read_text() + textwrap.dedent(
        """\
        hierarchy:
          default: mean
          support: worst
        """
    )
    profile = tmp_path / "family.yaml"
    profile.write_text(text)

    result = invoke("parents", "--profile", str(profile))

    assert result.exit_code == 0, result.output
    assert "engagement mean" in result.output
    assert "support worst" in result.output


def test_parents_rejects_other_components(invoke, tmp_path):
    profile = tmp_path / "other.yaml"
    profile.write_text(
        textwrap.dedent(
            """\
            name: other
            components:
              - name: usage
                weight: 1
                measures:
                  - metric: active_days_30d
                    linear: {worst: 0, best: 10}
            """
        )
    )

    result = invoke("parents", "--profile", str(profile))

    assert result.exit_code == 3
    assert "the profile has components ['usage']" in result.output


def test_parents_without_scores(tmp_path):
    path = tmp_path / "empty.duckdb"
    Store.open(path).close()

    result = CliRunner().invoke(app, ["parents", "--store", str(path)])

    assert result.exit_code == 5
    assert "no stored scores to roll up" in result.output


def test_segments_prints_table(invoke):
    result = invoke("segments")

    assert result.exit_code == 0, result.output
    for segment in ("Enterprise", "Mid-market", "SMB"):
        assert segment in result.output
    assert "churn rate" in result.output


def test_accounts_peers_column(invoke, store_path):
    result = invoke("accounts", "--peers", "--limit", "1")

    assert result.exit_code == 0, result.output
    assert "peer pct" in result.output
    scores = _read(
        store_path,
        "select s.account_id, a.segment, s.score from scores s "
        "join accounts a using (account_id)",
    )
    lowest = scores.sort_values(["score", "account_id"]).iloc[0]
    peers = scores.loc[scores["segment"] == lowest["segment"], "score"].dropna()
    expected = percentileofscore(peers, lowest["score"], kind="mean")
    line = next(
        row for row in result.output.splitlines() if lowest["account_id"] in row
    )
    assert line.rstrip(" │").split()[-1] == f"{expected:.1f}"
