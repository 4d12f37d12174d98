"""How the commands that take --profile report an invalid profile file."""

import textwrap

import pytest
from typer.testing import CliRunner

from healthscore.cli import app

AS_OF = "2024-03-31"

# The second measure names 'seets', a misspelling of the accounts column 'seats'.
UNKNOWN_METRIC_PROFILE = textwrap.dedent(
    """\
    name: misspelt
    components:
      - name: size
        weight: 1
        measures:
          - metric: contract
            category: {points: {Monthly: 0, Yearly: 100}}
          - metric: seets
            linear: {worst: 1, best: 50}
    """
)

UNKNOWN_METRIC_ERROR = "components[0].measures[1].metric: unknown metric 'seets'"


def run(*args):
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})


@pytest.fixture
def store(tmp_path):
    """Ingest 20 accounts with seats and a contract into a DuckDB file."""
    accounts = tmp_path / "accounts.csv"
    lines = ["account_id,segment,churned,seats,contract"]
    for i in range(20):
        contract = "Yearly" if i % 2 else "Monthly"
        lines.append(f"A{i:02d},SMB,{'Yes' if i % 4 == 0 else 'No'},{i + 1},{contract}")
    accounts.write_text("\n".join(lines) + "\n")
    path = tmp_path / "store.duckdb"
    result = run("ingest", "accounts", str(accounts), "--store", str(path))
    assert result.exit_code == 0, result.output
    return path


@pytest.fixture
def bad_profile(tmp_path):
    path = tmp_path / "misspelt.yaml"
    path.write_text(UNKNOWN_METRIC_PROFILE)
    return path


def test_score_unknown_metric_names_file(store, bad_profile):
    result = run(
        "score", "--store", str(store), "--as-of", AS_OF, "-p", str(bad_profile)
    )

    assert result.exit_code == 3
    assert f"{bad_profile}: {UNKNOWN_METRIC_ERROR}" in result.output


def test_learn_unknown_metric_names_file(store, bad_profile, tmp_path):
    out = tmp_path / "learned.yaml"

    result = run(
        "learn",
        "--store",
        str(store),
        "--as-of",
        AS_OF,
        "-p",
        str(bad_profile),
        "--out",
        str(out),
    )

    assert result.exit_code == 3
    assert f"{bad_profile}: {UNKNOWN_METRIC_ERROR}" in result.output
    assert not out.exists()


def test_predict_unknown_metric_names_file(store, bad_profile):
    result = run(
        "predict", "--store", str(store), "--as-of", AS_OF, "-p", str(bad_profile)
    )

    assert result.exit_code == 3
    assert f"{bad_profile}: {UNKNOWN_METRIC_ERROR}" in result.output
    assert "Traceback" not in result.output
