import math

import pandas as pd
import pytest


@pytest.fixture
def scored(invoke, portfolio):
    assert invoke("ingest", "accounts", str(portfolio["accounts"])).exit_code == 0
    assert invoke("ingest", "events", str(portfolio["events"])).exit_code == 0
    result = invoke(
        "score", "--as-of", "2024-03-31", "--profile", str(portfolio["profile"])
    )
    assert result.exit_code == 0, result.output
    return result


def test_ingest_prints_counts(invoke, portfolio):
    result = invoke("ingest", "accounts", str(portfolio["accounts"]))

    assert result.exit_code == 0, result.output
    assert "3 rows read" in result.output
    assert "3 accepted" in result.output
    assert "0 rejected" in result.output


def test_ingest_twice_adds_nothing(invoke, portfolio):
    invoke("ingest", "events", str(portfolio["events"]))

    result = invoke("ingest", "events", str(portfolio["events"]))

    assert result.exit_code == 0, result.output
    assert "0 accepted" in result.output
    assert "13 duplicates" in result.output
    assert "Nothing new" in result.output


def test_score_prints_band_counts(scored):
    # A1: (100 + 100) / 2 = 100, A2: (0 + 20) / 2 = 10, A3: (50 + 0) / 2 = 25.
    assert "Scored 3 accounts as of 2024-03-31" in scored.output
    assert "Good 1" in scored.output
    assert "Poor 2" in scored.output


def test_accounts_lists_lowest_first(invoke, scored):
    result = invoke("accounts", "--limit", "2")

    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if "│" in line]
    body = [line for line in lines if "A1" in line or "A2" in line or "A3" in line]
    assert "A2" in body[0]
    assert "A3" in body[1]
    assert len(body) == 2


def test_accounts_filters_band(invoke, scored):
    result = invoke("accounts", "--band", "good")

    assert result.exit_code == 0, result.output
    assert "A1" in result.output
    assert "A2" not in result.output


def test_accounts_rejects_unknown_band(invoke, scored):
    result = invoke("accounts", "--band", "Excellent")

    assert result.exit_code == 3
    assert "--band 'Excellent' is not a band of the stored profiles" in result.output


def test_accounts_empty_band_is_not_an_error(invoke, scored):
    result = invoke("accounts", "--band", "Average")

    assert result.exit_code == 0, result.output
    assert "No stored scores match" in result.output


def test_explain_contributions_add_up(invoke, scored):
    result = invoke("explain", "A3")

    assert result.exit_code == 0, result.output
    assert "score 25.0" in result.output
    assert "25.00" in result.output
    assert "One year" in result.output


def test_explain_unknown_account_exits_5(invoke, scored):
    result = invoke("explain", "NOPE")

    assert result.exit_code == 5
    assert "account 'NOPE' not found in the store" in result.output


def test_export_scores_csv(invoke, scored, tmp_path):
    out = tmp_path / "scores.csv"

    result = invoke("export", "scores", "--out", str(out))

    assert result.exit_code == 0, result.output
    frame = pd.read_csv(out)
    assert list(frame.columns[:6]) == [
        "account_id",
        "as_of",
        "score",
        "band",
        "coverage",
        "profile_hash",
    ]
    assert list(frame.columns[6:11]) == [
        "computed_score",
        "computed_band",
        "override_author",
        "override_reason",
        "override_expires_at",
    ]
    assert set(frame.columns[11:]) == {"commitment", "usage"}
    scores = dict(zip(frame["account_id"], frame["score"], strict=True))
    assert math.isclose(scores["A1"], 100.0)
    assert math.isclose(scores["A2"], 10.0)
    assert math.isclose(scores["A3"], 25.0)


def test_export_scores_parquet(invoke, scored, tmp_path):
    out = tmp_path / "scores.parquet"

    result = invoke("export", "scores", "--out", str(out))

    assert result.exit_code == 0, result.output
    frame = pd.read_parquet(out)
    assert len(frame) == 3
    assert frame.loc[frame["account_id"] == "A2", "usage"].item() == pytest.approx(20)


def test_export_rejects_unknown_extension(invoke, scored, tmp_path):
    result = invoke("export", "scores", "--out", str(tmp_path / "scores.xlsx"))

    assert result.exit_code == 3
    assert "unknown extension" in result.output


def test_report_writes_html(invoke, scored, tmp_path):
    out = tmp_path / "report.html"

    result = invoke("report", "--out", str(out))

    assert result.exit_code == 0, result.output
    page = out.read_text(encoding="utf-8")
    assert "A2" in page
    assert "https://" not in page


def test_score_rejects_bad_date(invoke, portfolio):
    result = invoke(
        "score", "--as-of", "31/03/2024", "--profile", str(portfolio["profile"])
    )

    assert result.exit_code == 3
    assert "--as-of '31/03/2024' is not a date; expected YYYY-MM-DD" in result.output


def test_score_rejects_unknown_metric(invoke, portfolio, tmp_path):
    invoke("ingest", "accounts", str(portfolio["accounts"]))
    profile = tmp_path / "bad.yaml"
    text = portfolio["profile"].read_text().replace("active_days_30d", "actve_days_30d")
    profile.write_text(text)

    result = invoke("score", "--profile", str(profile))

    assert result.exit_code == 3
    assert "components[1].measures[0].metric" in result.output
    assert "unknown metric 'actve_days_30d'" in result.output
    assert "Did you mean 'active_days_30d'" in result.output


def test_score_rejects_attribute_before_accounts_load(invoke, portfolio):
    invoke("ingest", "events", str(portfolio["events"]))

    result = invoke("score", "--profile", str(portfolio["profile"]))

    assert result.exit_code == 3
    assert "unknown metric 'contract'" in result.output
    assert "ingest accounts that have this column first" in result.output


def test_score_twice_keeps_newest_run(invoke, scored, tmp_path):
    invoke(
        "score", "--as-of", "2024-03-31", "--profile", str(tmp_path / "profile.yaml")
    )
    out = tmp_path / "scores.csv"

    invoke("export", "scores", "--out", str(out))

    assert len(pd.read_csv(out)) == 3


def test_report_without_scores_exits_5(invoke, portfolio, tmp_path):
    invoke("ingest", "accounts", str(portfolio["accounts"]))

    result = invoke("report", "--out", str(tmp_path / "r.html"))

    assert result.exit_code == 5
    assert "no stored scores. Run `healthscore score` first." in result.output


def test_export_names_filter_that_matched_nothing(invoke, scored, tmp_path):
    result = invoke(
        "export", "scores", "--out", str(tmp_path / "s.csv"), "--segment", "Nope"
    )

    assert result.exit_code == 5
    assert "no stored scores match --segment Nope" in result.output


def test_export_rounds_float_noise(invoke, scored, tmp_path):
    out = tmp_path / "scores.csv"

    invoke("export", "scores", "--out", str(out))

    assert "0.9999999" not in out.read_text()


def test_help_lists_every_command(runner):
    from healthscore.cli import app

    result = runner.invoke(app, ["--help"])

    assert result.exit_code == 0
    for command in (
        "demo",
        "ingest",
        "score",
        "accounts",
        "explain",
        "export",
        "report",
    ):
        assert command in result.output


@pytest.mark.parametrize(
    "command",
    [
        pytest.param(["accounts"], id="accounts"),
        pytest.param(["explain", "A1"], id="explain"),
        pytest.param(["quarantine"], id="quarantine"),
        pytest.param(["report"], id="report"),
        pytest.param(["export", "scores", "--out", "x.csv"], id="export"),
    ],
)
def test_read_command_missing_store_exits_6(runner, tmp_path, command):
    from healthscore.cli import app

    missing = tmp_path / "typo.duckdb"

    result = runner.invoke(app, [*command, "--store", str(missing)])

    assert result.exit_code == 6
    assert "typo.duckdb' not found" in result.output
    assert not missing.exists()


def test_score_rejects_future_date(invoke, scored, portfolio):
    result = invoke(
        "score", "--as-of", "3000-01-01", "--profile", str(portfolio["profile"])
    )

    assert result.exit_code == 3
    assert "--as-of '3000-01-01' is in the future" in result.output


def test_score_rejects_date_before_1900(invoke, scored, portfolio):
    result = invoke(
        "score", "--as-of", "0001-01-01", "--profile", str(portfolio["profile"])
    )

    assert result.exit_code == 3
    assert "is before 1900-01-01" in result.output


def test_score_warns_when_no_account_in_segment(invoke, portfolio, tmp_path):
    invoke("ingest", "accounts", str(portfolio["accounts"]))
    profile = tmp_path / "enterprise.yaml"
    text = portfolio["profile"].read_text()
    profile.write_text(text + "applies_to: {segments: [Enterprise]}\n")

    result = invoke("score", "--as-of", "2024-03-31", "--profile", str(profile))

    assert result.exit_code == 0
    assert "Scored 0 accounts" in result.output
    assert "no accounts in segments ['Enterprise']" in result.output


def test_accounts_unknown_segment_says_no_match(invoke, scored):
    result = invoke("accounts", "--segment", "Nope")

    assert result.exit_code == 0
    assert "No stored scores match" in result.output


def test_explain_prints_brackets_in_ids(invoke, tmp_path, portfolio):
    accounts = tmp_path / "brackets.csv"
    accounts.write_text("account_id,contract\n[/red]x,Two year\n")
    invoke("ingest", "accounts", str(accounts))
    invoke("ingest", "events", str(portfolio["events"]))
    invoke("score", "--as-of", "2024-03-31", "--profile", str(portfolio["profile"]))

    listed = invoke("accounts")
    explained = invoke("explain", "[/red]x")

    assert listed.exit_code == 0, listed.output
    assert "[/red]x" in listed.output
    assert explained.exit_code == 0, explained.output
    assert "[/red]x" in explained.output


def test_ingest_warns_about_unknown_accounts(invoke, portfolio):
    invoke("ingest", "accounts", str(portfolio["accounts"]))
    events = portfolio["events"]
    events.write_text(events.read_text() + "ZZZ,u9,login,2024-03-05T09:00:00Z\n")

    result = invoke("ingest", "events", str(events))

    assert result.exit_code == 0, result.output
    assert "1 of 14 accepted events rows name an account_id that is not in" in (
        result.output
    )


def test_ingest_warns_about_nested_columns(invoke, tmp_path):
    accounts = tmp_path / "accounts.jsonl"
    accounts.write_text('{"account_id": "A1", "tags": ["x", "y"]}\n')

    result = invoke("ingest", "accounts", str(accounts))

    assert result.exit_code == 0, result.output
    assert "1 accepted" in result.output
    assert "skipped columns ['tags']" in result.output
    assert result.output.count("skipped columns") == 1


def test_ingest_every_row_rejected_exits_4(invoke, tmp_path):
    events = tmp_path / "bad.csv"
    events.write_text("account_id,event_name,occurred_at\nA1,login,yesterday\n")

    result = invoke("ingest", "events", str(events))

    assert result.exit_code == 4
    assert "1 rejected" in result.output
    assert "every row was rejected" in result.output
    assert "Nothing new" not in result.output


def test_score_warns_when_events_end_long_before(invoke, portfolio, scored):
    recent = invoke(
        "score", "--as-of", "2024-04-15", "--profile", str(portfolio["profile"])
    )
    late = invoke(
        "score", "--as-of", "2024-09-30", "--profile", str(portfolio["profile"])
    )

    assert "newest event" not in scored.output
    assert "newest event" not in recent.output
    assert late.exit_code == 0, late.output
    assert "before the scoring date 2024-09-30" in " ".join(late.output.split())
