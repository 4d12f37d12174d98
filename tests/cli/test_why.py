"""`healthscore why` on real stores: the Telco demo and a small portfolio."""

import datetime as dt
import re
import textwrap
from decimal import Decimal

import pandas as pd
import pytest
from typer.testing import CliRunner

from healthscore.cli import app
from healthscore.demo.run import DEMO_DIR, TELCO_FILE
from healthscore.history import score_snapshot
from healthscore.ingest import ingest_file, load_mapping
from healthscore.scoring import load_profile, parse_profile
from healthscore.store import Store

BEFORE, AFTER = dt.date(2026, 11, 1), dt.date(2026, 12, 1)
PART_KINDS = (
    "profile_version",
    "profile_switch",
    "data",
    "went_missing",
    "came_back",
    "rounding",
)


@pytest.fixture(scope="module")
def telco_store(tmp_path_factory):
    """Score Telco with the shipped profile, then with the commitment weight halved."""
    path = tmp_path_factory.mktemp("why") / "telco.duckdb"
    version_1 = load_profile(DEMO_DIR / "profiles" / "telco.yaml")
    version_2 = parse_profile(version_1.text.replace("weight: 40", "weight: 20"))
    with Store.open(path) as store:
        mapping = load_mapping(DEMO_DIR / "mappings" / "telco.yaml")
        ingest_file(store, "accounts", TELCO_FILE, mapping)
        score_snapshot(store, version_1, BEFORE)
        score_snapshot(store, version_2, AFTER)
        scores = store.table("scores").to_pandas()
    scores["as_of"] = pd.to_datetime(scores["as_of"]).dt.date
    return path, scores


def _run(store, *args):
    return CliRunner().invoke(
        app, [*args, "--store", str(store)], env={"COLUMNS": "220"}
    )


def _parts(output):
    """Return (kind, cells) for each part row of the printed table."""
    rows = []
    for line in output.splitlines():
        cells = [cell.strip() for cell in line.strip("│ ").split("│")]
        if cells and cells[0] in PART_KINDS:
            rows.append((cells[0], cells))
    return rows


def _printed_change(output):
    match = re.search(
        r"add up to the change: (\d+\.\d) ([+-]) (\d+\.\d) = (\d+\.\d)", output
    )
    before, sign, amount, after = match.groups()
    return Decimal(before), Decimal(sign + amount), Decimal(after)


def test_why_telco_profile_version(telco_store):
    path, scores = telco_store
    stored = scores.set_index(["as_of", "account_id"])["score"]

    result = _run(
        path, "why", "7590-VHVEG", "--from", "2026-11-01", "--to", "2026-12-01"
    )

    assert result.exit_code == 0, result.output
    before, change, after = _printed_change(result.output)
    assert before == Decimal(f"{stored[(BEFORE, '7590-VHVEG')]:.1f}")
    assert after == Decimal(f"{stored[(AFTER, '7590-VHVEG')]:.1f}")
    assert after - before == change
    parts = _parts(result.output)
    assert parts[0][0] == "profile_version"
    assert sum(Decimal(cells[-1]) for _, cells in parts) == change
    # Only the weights changed, so every measure part is 0.
    assert all(Decimal(cells[-1]) == 0 for kind, cells in parts if kind == "data")


def test_why_telco_parts_sum_for_many_accounts(telco_store):
    path, scores = telco_store
    accounts = sorted(scores["account_id"].unique())[:: len(scores) // 8][:4]

    for account in accounts:
        result = _run(
            path, "why", account, "--from", "2026-11-01", "--to", "2026-12-01"
        )
        assert result.exit_code == 0, result.output
        before, change, after = _printed_change(result.output)
        parts = _parts(result.output)
        assert sum(Decimal(cells[-1]) for _, cells in parts) == change
        assert before + change == after


def test_why_missing_date_lists_dates(telco_store):
    path, _ = telco_store

    result = _run(
        path, "why", "7590-VHVEG", "--from", "2026-11-02", "--to", "2026-12-01"
    )

    assert result.exit_code == 5
    assert "as of 2026-11-02" in result.output
    assert "2026-12-01, 2026-11-01" in result.output


def test_why_unknown_account_exits_5(telco_store):
    path, _ = telco_store

    result = _run(path, "why", "NO-SUCH", "--from", "2026-11-01", "--to", "2026-12-01")

    assert result.exit_code == 5
    assert "account 'NO-SUCH' not found" in result.output


def test_why_invalid_date_exits_3(telco_store):
    path, _ = telco_store

    result = _run(
        path, "why", "7590-VHVEG", "--from", "2026-13-01", "--to", "2026-12-01"
    )

    assert result.exit_code == 3
    assert "--from '2026-13-01' is not a date" in result.output


@pytest.fixture
def usage_store(invoke, portfolio, tmp_path):
    """Score the portfolio as of 2024-03-10 and 2024-03-31 with the same profile."""
    assert invoke("ingest", "accounts", str(portfolio["accounts"])).exit_code == 0
    assert invoke("ingest", "events", str(portfolio["events"])).exit_code == 0
    for day in ("2024-03-10", "2024-03-31"):
        result = invoke("score", "--as-of", day, "--profile", str(portfolio["profile"]))
        assert result.exit_code == 0, result.output
    return tmp_path / "store.duckdb"


def test_why_data_change_by_hand(invoke, usage_store):
    # A2 logged in on 03-05 and 03-20. As of 03-10: 1 active day in 30, 10 points,
    # score (0 + 10) / 2 = 5. As of 03-31: 2 days, 20 points, score 10. The usage
    # measure moves by (20 - 10) / 2 = 5 points and the contract by 0.
    result = invoke("why", "A2", "--from", "2024-03-10", "--to", "2024-03-31")

    assert result.exit_code == 0, result.output
    assert _printed_change(result.output) == (
        Decimal("5.0"),
        Decimal("5.0"),
        Decimal("10.0"),
    )
    parts = {cells[2]: cells for kind, cells in _parts(result.output) if kind == "data"}
    assert parts["active_days_30d"][-1] == "+5.0"
    assert parts["active_days_30d"][3] == "1 -> 2"
    assert parts["active_days_30d"][4] == "10.0 -> 20.0"
    assert parts["contract"][-1] == "0.0"
    assert parts["contract"][3] == "Month-to-month -> Month-to-month"


def test_why_reversed_dates_negate(invoke, usage_store):
    result = invoke("why", "A1", "--from", "2024-03-31", "--to", "2024-03-10")

    # A1 is active on 03-02 to 03-11: 9 days as of 03-10 (95) and 10 as of 03-31 (100).
    assert result.exit_code == 0, result.output
    assert _printed_change(result.output) == (
        Decimal("100.0"),
        Decimal("-5.0"),
        Decimal("95.0"),
    )


def test_why_unknown_score_says_why(invoke, usage_store, tmp_path):
    profile = tmp_path / "needs-nps.yaml"
    profile.write_text(
        textwrap.dedent(
            """\
            name: needs-nps
            min_coverage: 0.75
            components:
              - name: commitment
                weight: 1
                measures:
                  - metric: contract
                    category: {points: {Month-to-month: 0, One year: 50, Two year: 100}}
              - name: feedback
                weight: 1
                measures:
                  - metric: nps
                    linear: {worst: -100, best: 100}
            """
        )
    )
    scored = invoke("score", "--as-of", "2024-03-20", "--profile", str(profile))
    assert scored.exit_code == 0, scored.output

    result = invoke("why", "A1", "--from", "2024-03-10", "--to", "2024-03-20")

    assert result.exit_code == 0, result.output
    assert "-> Unknown (Unknown) as of 2024-03-20" in result.output
    assert "No parts: the score after is Unknown because its coverage" in result.output
    assert _parts(result.output) == []
