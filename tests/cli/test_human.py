import datetime as dt
import re

import pandas as pd
import pytest

from healthscore.store import Store

NEXT_YEAR = (dt.datetime.now(dt.UTC).date() + dt.timedelta(days=365)).isoformat()

EXIT_CONFIG = 3
EXIT_NOT_FOUND = 5


@pytest.fixture
def loaded(invoke, portfolio):
    result = invoke("ingest", "accounts", str(portfolio["accounts"]))
    assert result.exit_code == 0, result.output
    return portfolio


def _input_id(output):
    match = re.search(r"as input ([0-9a-f]{12})", output)
    assert match, output
    return match.group(1)


def _set_override(invoke, *options):
    return invoke(
        "override",
        "set",
        "A1",
        *options,
        "--author",
        "ann",
        "--reason",
        "exec sponsor left",
        "--expires",
        NEXT_YEAR,
    )


def test_override_set_applies_at_next_score(invoke, loaded):
    set_result = _set_override(invoke, "--score", "35")
    score_result = invoke("score", "--profile", str(loaded["profile"]))
    explain_result = invoke("explain", "A1")

    assert set_result.exit_code == 0, set_result.output
    assert "Set override score 35 for account A1" in set_result.output
    assert score_result.exit_code == 0, score_result.output
    assert explain_result.exit_code == 0, explain_result.output
    # Computed: contract Two year is 100 points, and with no events loaded the
    # usage measure is missing, so the contract alone gives 100.
    assert "score 35.0, band Poor" in explain_result.output
    assert f"Override {_input_id(set_result.output)}: score 35 set by ann" in (
        explain_result.output
    )
    assert "Computed: score 100.0, band Good." in explain_result.output
    assert re.search(r"score\s.*100\.00", explain_result.output)


def test_export_scores_marks_override(invoke, loaded, tmp_path):
    _set_override(invoke, "--score", "35")
    invoke("score", "--profile", str(loaded["profile"]))
    out = tmp_path / "scores.csv"

    result = invoke("export", "scores", "--out", str(out))

    assert result.exit_code == 0, result.output
    rows = pd.read_csv(out).set_index("account_id")
    assert rows.loc["A1", "score"] == 35.0
    assert rows.loc["A1", "computed_score"] == 100.0
    assert rows.loc["A1", "computed_band"] == "Good"
    assert rows.loc["A1", "override_author"] == "ann"
    assert rows.drop(index="A1")["override_author"].isna().all()


def test_explain_without_override_has_no_override_line(invoke, loaded):
    invoke("score", "--profile", str(loaded["profile"]))

    result = invoke("explain", "A1")

    assert result.exit_code == 0, result.output
    assert "Override" not in result.output


def test_override_clear_writes_audit(invoke, loaded, tmp_path):
    input_id = _input_id(_set_override(invoke, "--band", "Poor").output)

    cleared = invoke(
        "override", "clear", input_id, "--author", "bob", "--reason", "resolved"
    )
    history = invoke("inputs", "history", "A1")

    assert cleared.exit_code == 0, cleared.output
    assert f"Cleared override band Poor of account A1 (input {input_id})" in (
        cleared.output
    )
    assert history.exit_code == 0, history.output
    assert re.search(r"set .*ann .*band Poor", history.output)
    assert re.search(r"clear .*bob .*resolved .*band Poor", history.output)
    with Store.open(tmp_path / "store.duckdb", create=False) as store:
        audit = store.table("human_input_audit").order_by("changed_at").to_pandas()
    assert audit["action"].tolist() == ["set", "clear"]
    assert audit["author"].tolist() == ["ann", "bob"]


def test_sentiment_set_and_inputs_list(invoke, loaded):
    first = invoke(
        "sentiment",
        "set",
        "A2",
        "green",
        "--author",
        "ann",
        "--reason",
        "QBR",
        "--expires",
        NEXT_YEAR,
    )
    second = invoke(
        "sentiment",
        "set",
        "A2",
        "2",
        "--author",
        "bob",
        "--reason",
        "escalation",
        "--expires",
        NEXT_YEAR,
    )
    active = invoke("inputs", "list")
    every = invoke("inputs", "list", "--all", "--account", "A2")

    assert first.exit_code == 0, first.output
    assert second.exit_code == 0, second.output
    assert f"It replaces input {_input_id(first.output)}." in second.output
    assert active.exit_code == 0, active.output
    assert _input_id(second.output) in active.output
    assert _input_id(first.output) not in active.output
    assert "replaced" in every.output
    assert "active" in every.output


def test_inputs_list_empty_says_how_to_add(invoke, loaded):
    result = invoke("inputs", "list")

    assert result.exit_code == 0
    assert "No active inputs" in result.output


def test_override_set_score_and_band_rejected(invoke, loaded):
    result = _set_override(invoke, "--score", "35", "--band", "Poor")

    assert result.exit_code == EXIT_CONFIG
    assert "give exactly one of score and band" in result.output


def test_override_set_unknown_account_rejected(invoke, loaded):
    result = invoke(
        "override",
        "set",
        "ZZ",
        "--score",
        "10",
        "--author",
        "a",
        "--reason",
        "r",
        "--expires",
        NEXT_YEAR,
    )

    assert result.exit_code == EXIT_NOT_FOUND
    assert "account 'ZZ' not found" in result.output


def test_sentiment_set_past_expiry_rejected(invoke, loaded):
    result = invoke(
        "sentiment",
        "set",
        "A1",
        "4",
        "--author",
        "a",
        "--reason",
        "r",
        "--expires",
        "2020-01-01",
    )

    assert result.exit_code == EXIT_CONFIG
    assert "expiry '2020-01-01' is not after now" in result.output


def test_sentiment_set_bad_date_rejected(invoke, loaded):
    result = invoke(
        "sentiment",
        "set",
        "A1",
        "4",
        "--author",
        "a",
        "--reason",
        "r",
        "--expires",
        "next week",
    )

    assert result.exit_code == EXIT_CONFIG
    assert "--expires 'next week' is not a date" in result.output


def test_override_clear_sentiment_id_rejected(invoke, loaded):
    set_result = invoke(
        "sentiment",
        "set",
        "A1",
        "4",
        "--author",
        "a",
        "--reason",
        "r",
        "--expires",
        NEXT_YEAR,
    )
    input_id = _input_id(set_result.output)

    result = invoke("override", "clear", input_id, "--author", "a", "--reason", "r")

    assert result.exit_code == EXIT_CONFIG
    assert f"healthscore sentiment clear {input_id}" in result.output
