import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from healthscore.cli.learn import learn
from healthscore.ingest import ingest_file
from healthscore.profiles import DEFAULT_PROFILE
from healthscore.scoring import load_profile
from healthscore.store import Store

AS_OF = "2025-03-31"

PROFILE = """\
name: hand-set
description: Seats and contract.
min_coverage: 0.5
components:
  - name: commitment
    weight: 1
    measures:
      - metric: contract
        category: {points: {Month-to-month: 0, Two year: 100}}
      - metric: seats
        linear: {worst: 1, best: 50}
"""


def learn_app() -> typer.Typer:
    app = typer.Typer(rich_markup_mode="markdown")
    app.command()(learn)

    @app.callback()
    def main() -> None:
        """Group, so that the command is called by name."""

    return app


def write_accounts(path, churned: list[object]) -> None:
    """Write accounts whose churn odds fall with seats and a two-year contract."""
    rng = np.random.default_rng(3)
    lines = ["account_id,churned,seats,contract"]
    for i, outcome in enumerate(churned):
        seats = int(rng.integers(1, 60))
        contract = "Two year" if i % 3 == 0 else "Month-to-month"
        lines.append(f"A{i:03d},{outcome},{seats},{contract}")
    path.write_text("\n".join(lines) + "\n")


def random_outcomes(n: int) -> list[bool]:
    rng = np.random.default_rng(5)
    return [bool(rng.random() < (0.6 if i % 3 else 0.15)) for i in range(n)]


@pytest.fixture
def store_path(tmp_path):
    path = tmp_path / "store.duckdb"
    accounts = tmp_path / "accounts.csv"
    write_accounts(accounts, random_outcomes(300))
    store = Store.open(path)
    ingest_file(store, "accounts", accounts)
    store.close()
    return path


def invoke(*args):
    return CliRunner().invoke(learn_app(), ["learn", *args], env={"COLUMNS": "200"})


def test_learn_writes_profile(store_path, tmp_path):
    out = tmp_path / "learned.yaml"

    result = invoke(
        "--store",
        str(store_path),
        "--as-of",
        AS_OF,
        "--metrics",
        "seats,contract",
        "--out",
        str(out),
        "--name",
        "my-learned",
    )

    assert result.exit_code == 0, result.output
    assert "Trained a logistic model on 300 rows" in result.output
    assert "model probability" in result.output
    assert "learned profile score" in result.output
    profile = load_profile(out)
    assert profile.name == "my-learned"
    assert set(profile.metrics) == {"seats", "contract"}


def test_learn_compares_with_profile(store_path, tmp_path):
    base = tmp_path / "hand.yaml"
    base.write_text(PROFILE)
    out = tmp_path / "learned.yaml"

    result = invoke(
        "--store",
        str(store_path),
        "--as-of",
        AS_OF,
        "--profile",
        str(base),
        "--out",
        str(out),
    )

    assert result.exit_code == 0, result.output
    assert "profile hand-set" in result.output
    components = [c.name for c in load_profile(out).components]
    assert components == ["commitment"]


def test_learn_unknown_metric(store_path, tmp_path):
    result = invoke(
        "--store",
        str(store_path),
        "--as-of",
        AS_OF,
        "--metrics",
        "seats,logins",
        "--out",
        str(tmp_path / "o.yaml"),
    )

    assert result.exit_code == 3
    assert "logins" in result.output
    assert not (tmp_path / "o.yaml").exists()


def test_learn_no_churners(tmp_path):
    path = tmp_path / "store.duckdb"
    accounts = tmp_path / "accounts.csv"
    write_accounts(accounts, [False] * 50)
    store = Store.open(path)
    ingest_file(store, "accounts", accounts)
    store.close()

    result = invoke(
        "--store",
        str(path),
        "--as-of",
        AS_OF,
        "--metrics",
        "seats",
        "--out",
        str(tmp_path / "o.yaml"),
    )

    assert result.exit_code == 4
    assert "none of the 50 labelled accounts churned" in result.output


def test_learn_no_outcomes(tmp_path):
    path = tmp_path / "store.duckdb"
    accounts = tmp_path / "accounts.csv"
    write_accounts(accounts, [""] * 50)
    store = Store.open(path)
    ingest_file(store, "accounts", accounts)
    store.close()

    result = invoke(
        "--store",
        str(path),
        "--as-of",
        AS_OF,
        "--metrics",
        "seats",
        "--out",
        str(tmp_path / "o.yaml"),
    )

    assert result.exit_code == 4
    assert "has no rows" in result.output


def test_learn_single_class_too_small(tmp_path):
    path = tmp_path / "store.duckdb"
    accounts = tmp_path / "accounts.csv"
    write_accounts(accounts, [True, True] + [False] * 40)
    store = Store.open(path)
    ingest_file(store, "accounts", accounts)
    store.close()

    result = invoke(
        "--store",
        str(path),
        "--as-of",
        AS_OF,
        "--metrics",
        "seats",
        "--out",
        str(tmp_path / "o.yaml"),
    )

    assert result.exit_code == 4
    assert "2 churned and 40 retained" in result.output
    assert "at least 5 of each" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--metrics", "seats", "--profile", "PROFILE"], "pass one of them"),
        (["--metrics", " , "], "names no metric"),
        (["--metrics", "seats", "--as-of", "31/03/2025"], "is not a date"),
        (["--metrics", "seats", "--as-of", "2999-01-01"], "is in the future"),
    ],
)
def test_learn_usage_errors(store_path, tmp_path, args, message):
    base = tmp_path / "hand.yaml"
    base.write_text(PROFILE)
    args = [str(base) if a == "PROFILE" else a for a in args]

    result = invoke(
        "--store", str(store_path), "--out", str(tmp_path / "o.yaml"), *args
    )

    assert result.exit_code == 3
    assert message in result.output


def test_learn_missing_store(tmp_path):
    result = invoke(
        "--store",
        str(tmp_path / "none.duckdb"),
        "--metrics",
        "seats",
        "--out",
        str(tmp_path / "o.yaml"),
    )

    assert result.exit_code == 6
    assert "none.duckdb" in result.output


@pytest.mark.slow
def test_learn_boosted(store_path, tmp_path):
    out = tmp_path / "learned.yaml"

    result = invoke(
        "--store",
        str(store_path),
        "--as-of",
        AS_OF,
        "--metrics",
        "seats,contract",
        "--out",
        str(out),
        "--model",
        "boosted",
    )

    assert result.exit_code == 0, result.output
    assert "Trained a boosted model" in result.output
    assert set(load_profile(out).metrics) == {"seats", "contract"}


def test_learn_creates_out_folder(store_path, tmp_path):
    out = tmp_path / "new" / "nested" / "learned.yaml"

    result = invoke(
        "--store",
        str(store_path),
        "--as-of",
        AS_OF,
        "--metrics",
        "seats,contract",
        "--out",
        str(out),
    )

    assert result.exit_code == 0, result.output
    assert out.is_file()


def test_learn_out_folder_is_file(store_path, tmp_path):
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a folder\n")

    result = invoke(
        "--store",
        str(store_path),
        "--as-of",
        AS_OF,
        "--metrics",
        "seats",
        "--out",
        str(blocker / "learned.yaml"),
    )

    assert result.exit_code == 3
    assert "blocker" in result.output
    assert "Trained" not in result.output


def write_dated_store(tmp_path):
    """Write 120 accounts, a third churning in the 90 days after AS_OF, with events.

    Accounts that churn log in on 2 of the 30 days to AS_OF, the others on 12.
    """
    accounts = tmp_path / "dated_accounts.csv"
    events = tmp_path / "dated_events.csv"
    account_lines = ["account_id,churned,churned_at"]
    event_lines = ["account_id,user_id,event_name,occurred_at"]
    for i in range(120):
        churns = i % 3 == 0
        churned_at = f"2025-05-{(i % 28) + 1:02d}T00:00:00Z" if churns else ""
        account_lines.append(f"D{i:03d},{churns},{churned_at}")
        days = 2 if churns else 12
        event_lines += [
            f"D{i:03d},u{i},login,2025-03-{day + 2:02d}T09:00:00Z"
            for day in range(days)
        ]
    accounts.write_text("\n".join(account_lines) + "\n")
    events.write_text("\n".join(event_lines) + "\n")
    path = tmp_path / "dated.duckdb"
    store = Store.open(path)
    ingest_file(store, "accounts", accounts)
    ingest_file(store, "events", events)
    store.close()
    return path


def test_learn_defaults_to_saas_metrics(tmp_path):
    path = write_dated_store(tmp_path)
    out = tmp_path / "learned.yaml"

    result = invoke(
        "--store",
        str(path),
        "--as-of",
        AS_OF,
        "--horizon-days",
        "90",
        "--out",
        str(out),
    )

    assert result.exit_code == 0, result.output
    assert "Trained a logistic model on 120 rows" in result.output
    assert "40 churned within 90 days" in result.output
    assert set(load_profile(out).metrics) <= set(load_profile(DEFAULT_PROFILE).metrics)
    assert "active_days_30d" in load_profile(out).metrics


def test_learn_help_names_default_metrics():
    result = CliRunner().invoke(
        learn_app(), ["learn", "--help"], env={"COLUMNS": "300"}
    )

    assert result.exit_code == 0
    assert "[default: the metrics of the built-in SaaS profile]" in result.output


def test_learn_dates_closer_than_horizon(tmp_path):
    path = write_dated_store(tmp_path)

    result = invoke(
        "--store",
        str(path),
        "--as-of",
        "2025-03-01",
        "--as-of",
        AS_OF,
        "--out",
        str(tmp_path / "o.yaml"),
    )

    assert result.exit_code == 4
    assert "time_based" not in result.output
    assert "less than --horizon-days 90 apart" in result.output
    assert "single --as-of date" in result.output


def test_learn_all_coefficients_zero(tmp_path):
    accounts = tmp_path / "accounts.csv"
    lines = [f"A{i:03d},{o},5" for i, o in enumerate(random_outcomes(60))]
    accounts.write_text("account_id,churned,seats\n" + "\n".join(lines) + "\n")
    path = tmp_path / "store.duckdb"
    store = Store.open(path)
    ingest_file(store, "accounts", accounts)
    store.close()

    result = invoke(
        "--store",
        str(path),
        "--as-of",
        AS_OF,
        "--metrics",
        "seats",
        "--out",
        str(tmp_path / "o.yaml"),
    )

    assert result.exit_code == 4
    assert "larger C" not in result.output
    assert "other --metrics" in result.output


def test_learn_undated_churn_summary(store_path, tmp_path):
    result = invoke(
        "--store",
        str(store_path),
        "--as-of",
        AS_OF,
        "--metrics",
        "seats,contract",
        "--out",
        str(tmp_path / "o.yaml"),
    )
    churned = sum(random_outcomes(300))

    assert result.exit_code == 0, result.output
    assert f"{churned} churned, with no churn dates" in result.output
    assert "the horizon is not used" in result.output
    assert "within 90 days" not in result.output
    assert f"warning: {churned} churned accounts have no churned_at" in " ".join(
        result.output.split()
    )
