import textwrap

import pytest

from healthscore.cli._common import EXIT_CONFIG
from healthscore.store import Store


@pytest.fixture
def loaded(invoke, portfolio):
    assert invoke("ingest", "accounts", str(portfolio["accounts"])).exit_code == 0
    assert invoke("ingest", "events", str(portfolio["events"])).exit_code == 0
    return portfolio


def _scores(tmp_path):
    with Store.open(tmp_path / "store.duckdb", create=False) as store:
        return store.table("scores").to_pandas()


def test_backfill_stores_one_row_per_account_and_date(invoke, loaded, tmp_path):
    profile = str(loaded["profile"])

    result = invoke(
        "backfill", "--from", "2024-03-25", "--to", "2024-03-31", "--profile", profile
    )

    assert result.exit_code == 0, result.output
    assert "Backfilled 7 dates from 2024-03-25 to 2024-03-31" in result.output
    assert "21 account scores" in result.output
    scores = _scores(tmp_path)
    assert len(scores) == 21
    assert scores.groupby("as_of")["account_id"].count().tolist() == [3] * 7


def test_backfill_rerun_replaces_rows(invoke, loaded, tmp_path):
    args = ["--from", "2024-03-30", "--to", "2024-03-31"]
    args += ["--profile", str(loaded["profile"])]
    invoke("backfill", *args)
    before = _scores(tmp_path).sort_values(["as_of", "account_id"])

    result = invoke("backfill", *args)

    assert result.exit_code == 0, result.output
    assert "Replaced the earlier backfill rows of 2 dates" in result.output
    after = _scores(tmp_path).sort_values(["as_of", "account_id"])
    assert len(after) == 6
    assert before.reset_index(drop=True).equals(after.reset_index(drop=True))


def test_accounts_shows_change_after_backfill(invoke, loaded):
    profile = str(loaded["profile"])
    for day in ("2024-03-10", "2024-03-31"):
        result = invoke("backfill", "--from", day, "--to", day, "--profile", profile)
        assert result.exit_code == 0, result.output

    result = invoke("accounts", "--as-of", "2024-03-31", "--trend-days", "21,7")

    assert result.exit_code == 0, result.output
    assert "21d change" in result.output
    # No score is stored for 2024-03-24, so the 7-day column is left out.
    assert "7d change" not in result.output.replace("21d change", "")
    rows = {line.split()[1]: line for line in result.output.splitlines() if "A" in line}
    # As of 03-10, A1 was active on 9 of 30 days (03-02 to 03-10): (100 + 90) / 2
    # = 95, and 100 on 03-31. A2 was active on 03-05 only: (0 + 10) / 2 = 5, and
    # (0 + 20) / 2 = 10 on 03-31. A3 scores (50 + 0) / 2 = 25 on both dates.
    assert "+5.0" in rows["A1"]
    assert "+5.0" in rows["A2"]
    assert "+0.0" in rows["A3"]


def test_accounts_empty_trend_days_hides_changes(invoke, loaded):
    profile = str(loaded["profile"])
    for day in ("2024-03-10", "2024-03-31"):
        invoke("backfill", "--from", day, "--to", day, "--profile", profile)

    result = invoke("accounts", "--as-of", "2024-03-31", "--trend-days", "")

    assert result.exit_code == 0, result.output
    assert "change" not in result.output


def test_accounts_rejects_bad_trend_days(invoke, loaded):
    result = invoke("accounts", "--trend-days", "7,x")

    assert result.exit_code == EXIT_CONFIG
    assert "'x'" in result.output


def test_backfill_rejects_reversed_range(invoke, loaded):
    result = invoke("backfill", "--from", "2024-03-31", "--to", "2024-03-01")

    assert result.exit_code == EXIT_CONFIG
    assert "after its end" in result.output


def test_backfill_rejects_future_date(invoke, loaded):
    result = invoke("backfill", "--from", "2024-03-01", "--to", "2999-01-01")

    assert result.exit_code == EXIT_CONFIG
    assert "--to '2999-01-01' is in the future" in result.output


def test_score_with_profile_set_stores_each_profile(invoke, loaded, tmp_path):
    profile_set = tmp_path / "set.yaml"
    profile_set.write_text(
        textwrap.dedent(
            f"""\
            name: by-size
            profiles:
              - profile: {loaded["profile"].name}
                when: {{arr_at_least: 10000}}
              - profile:
                  name: arr-only
                  components:
                    - name: value
                      weight: 1
                      measures:
                        - metric: arr
                          linear: {{worst: 0, best: 10000}}
            """
        )
    )

    result = invoke("score", "--as-of", "2024-03-31", "--profile", str(profile_set))

    assert result.exit_code == 0, result.output
    assert "with profile set by-size" in result.output
    assert "Profiles: small 2, arr-only 1" in result.output
    scores = _scores(tmp_path).set_index("account_id")
    assert scores.loc["A1", "profile_name"] == "small"
    assert scores.loc["A2", "profile_name"] == "small"
    assert scores.loc["A3", "profile_name"] == "arr-only"
    # A3 has ARR 6,000: 60 points on the 0 to 10,000 range.
    assert scores.loc["A3", "score"] == pytest.approx(60.0)
