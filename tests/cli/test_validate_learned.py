"""`healthscore validate` on a profile that `healthscore learn` wrote."""

import json

import pytest
from typer.testing import CliRunner

from healthscore.cli import app
from tests.predict.test_predictions import build_history_store

# Accounts observed on 2024-09-01 are labelled by churn up to 60 days later.
LEARN_AS_OF = "2024-09-01"
LABELS_END = "2024-10-31"


def run(*args):
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})


@pytest.fixture(scope="module")
def learned(tmp_path_factory):
    """Learn a profile on the history store, where accounts churn from 2024-10-05."""
    folder = tmp_path_factory.mktemp("learned")
    store = folder / "store.duckdb"
    build_history_store(store).close()
    profile = folder / "learned.yaml"
    result = run(
        "learn",
        "--store",
        str(store),
        "--as-of",
        LEARN_AS_OF,
        "--horizon-days",
        "60",
        "--metrics",
        "active_days_30d,days_since_last_event",
        "--out",
        str(profile),
    )
    assert result.exit_code == 0, result.output
    return {"store": store, "profile": profile, "folder": folder}


def validate(learned, as_of):
    out = learned["folder"] / f"validation-{as_of}"
    result = run(
        "validate",
        "--store",
        str(learned["store"]),
        "-p",
        str(learned["profile"]),
        "--as-of",
        as_of,
        "--bootstraps",
        "10",
        "--out",
        str(out),
    )
    document = json.loads((out / "validation.json").read_text())
    return result, document


def test_learn_writes_labels_end(learned):
    text = learned["profile"].read_text()

    assert "horizon_days: 60" in text
    assert f"labels_end: {LABELS_END}" in text


def test_validate_warns_of_overlap(learned):
    result, document = validate(learned, "2024-10-15")

    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if "warning:" in line]
    assert len(lines) == 1
    assert f"churn labels up to {LABELS_END}" in lines[0]
    assert "--as-of 2024-10-15" in lines[0]
    assert "every --as-of on or before 2024-08-16" in lines[0]
    warnings = document["profiles"][0]["warnings"]
    assert lines[0] == f"warning: {warnings[0]}"


def test_validate_no_warning_after_labels(learned):
    result, document = validate(learned, "2024-11-01")

    assert result.exit_code == 0, result.output
    assert "warning:" not in result.output
    assert document["profiles"][0]["warnings"] == []
