"""`healthscore ingest` and `healthscore quarantine` on a CSV value of 1 MB."""

import json

import pytest
from typer.testing import CliRunner

from healthscore.cli import app
from healthscore.store import Store

BIG = "x" * 1_000_000

TOO_LONG_REASON = (
    "a value is longer than 131,072 characters, the maximum of Python's CSV reader; "
    "shorten the value, or convert the file to JSON Lines or Parquet, which have no "
    "such limit"
)


def squeeze(text: str) -> str:
    """Drop whitespace, which Rich adds and removes where it folds a cell."""
    return "".join(text.split())


def raw_column(output: str) -> str:
    """Join the lines of the last column of the table, without whitespace."""
    cells = [line.split("│")[-2] for line in output.splitlines() if line[:1] == "│"]
    return squeeze("".join(cells))


def stored_rejects(path) -> list[dict]:
    with Store.open(path) as store:
        frame = store.table("quarantine").order_by("row_number").to_pandas()
    return frame[["row_number", "raw", "reason"]].to_dict("records")


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    """Ingest accounts whose row 1 has a quoted 1 MB name into a new store."""
    folder = tmp_path_factory.mktemp("long")
    accounts = folder / "accounts.csv"
    accounts.write_text(f'account_id,name\nA1,"{BIG}"\nA2,Globex\n', encoding="utf-8")
    store = folder / "store.duckdb"

    result = CliRunner().invoke(
        app, ["ingest", "accounts", str(accounts), "--store", str(store)]
    )

    assert result.exit_code == 0, result.output
    return store


def test_ingest_long_value_rejected_with_limit(loaded):
    rejects = stored_rejects(loaded)

    assert [row["row_number"] for row in rejects] == [1]
    assert rejects[0]["reason"] == TOO_LONG_REASON


def test_ingest_long_value_raw_kept_whole(loaded):
    raw = stored_rejects(loaded)[0]["raw"]

    # {"_line": "A1,\"<BIG>\"\n"}: 11 + 3 + 2 + 1,000,000 + 2 + 2 + 2 characters.
    assert len(raw) == 1_000_022
    assert json.loads(raw) == {"_line": f'A1,"{BIG}"\n'}


def test_quarantine_long_value_shortened(loaded):
    raw = stored_rejects(loaded)[0]["raw"]

    result = CliRunner().invoke(app, ["quarantine", "--store", str(loaded)])

    assert result.exit_code == 0, result.output
    output = raw_column(result.output)
    assert output == squeeze(raw[:200]) + "…(999,822morecharacters)"
    assert len(result.output) < 5_000


def test_quarantine_raw_chars_option(loaded):
    raw = stored_rejects(loaded)[0]["raw"]

    result = CliRunner().invoke(
        app, ["quarantine", "--raw-chars", "20", "--store", str(loaded)]
    )

    assert result.exit_code == 0, result.output
    expected = squeeze(raw[:20]) + "…(1,000,002morecharacters)"
    assert raw_column(result.output) == expected


def test_quarantine_short_value_whole(tmp_path):
    accounts = tmp_path / "accounts.csv"
    accounts.write_text("account_id,name\nA1,Acme,extra\nA2,Globex\n")
    store = tmp_path / "store.duckdb"
    runner = CliRunner()
    ingested = runner.invoke(
        app, ["ingest", "accounts", str(accounts), "--store", str(store)]
    )
    assert ingested.exit_code == 0, ingested.output

    result = runner.invoke(app, ["quarantine", "--store", str(store)])

    assert result.exit_code == 0, result.output
    raw = stored_rejects(store)[0]["raw"]
    assert raw == '{"account_id": "A1", "name": "Acme", "_extra_fields": ["extra"]}'
    assert raw_column(result.output) == squeeze(raw)


def test_ingest_unclosed_quote_names_both_causes(tmp_path):
    # The quote opened on row 1 never closes, so the reader runs through the
    # following 200 lines of over 1,000 characters each and passes the 131,072
    # character limit.
    filler = "".join(f"B{i},{'y' * 1000}\n" for i in range(200))
    accounts = tmp_path / "accounts.csv"
    accounts.write_text(f'account_id,name\nA1,"Acme\n{filler}')
    store = tmp_path / "store.duckdb"

    result = CliRunner().invoke(
        app, ["ingest", "accounts", str(accounts), "--store", str(store)]
    )

    assert result.exit_code == 0, result.output
    reasons = {row["row_number"]: row["reason"] for row in stored_rejects(store)}
    assert reasons[1] == (
        "a value is longer than 131,072 characters, the maximum of Python's CSV "
        'reader, or a quote (") opens a value and never closes; close the quote, or '
        "shorten the value, or convert the file to JSON Lines or Parquet, which have "
        "no such limit"
    )
