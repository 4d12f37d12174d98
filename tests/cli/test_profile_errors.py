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
        churned = "Yes" if i % 4 == 0 else "No"
        contract = "Yearly" if i % 2 else "Monthly"
        lines.append(f"A{i:02d},SMB,{churned},{i + 1},{contract}")
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


# The component's required weight is written 'wieght'.
MISSPELT_KEY_PROFILE = textwrap.dedent(
    """\
    name: typo
    components:
      - name: size
        wieght: 1
        measures:
          - metric: seats
            linear: {worst: 1, best: 50}
          - metric: contract
            categroy: {points: {Monthly: 0, Yearly: 100}}
    """
)

COMMANDS = ["learn", "predict", "score", "validate"]


def command_args(command, folder):
    """Return the arguments of ``command`` apart from --store and --profile."""
    return {
        "score": ["score", "--as-of", AS_OF],
        "learn": ["learn", "--as-of", AS_OF, "--out", str(folder / "learned.yaml")],
        "predict": ["predict", "--as-of", AS_OF],
        "validate": ["validate", "--as-of", AS_OF, "--out", str(folder / "report")],
    }[command]


@pytest.mark.parametrize("command", COMMANDS)
def test_misspelt_key_reported_once(command, store, tmp_path):
    profile = tmp_path / "typo.yaml"
    profile.write_text(MISSPELT_KEY_PROFILE)
    args = command_args(command, tmp_path)

    result = run(*args, "--store", str(store), "-p", str(profile))

    assert result.exit_code == 3
    assert result.output.count("'wieght'") == 1
    assert result.output.count("'categroy'") == 1
    assert "missing required key" not in result.output
    assert "expected exactly one scheme" not in result.output


def test_profile_check_misspelt_key_once(tmp_path):
    profile = tmp_path / "typo.yaml"
    profile.write_text(MISSPELT_KEY_PROFILE)

    result = run("profile", "check", str(profile))

    assert result.exit_code == 3
    assert "(2 problems)" in result.output
    assert "components[0].wieght: unknown key 'wieght'" in result.output
    assert "components[0].measures[1].categroy: unknown key" in result.output
    assert "missing required key" not in result.output
