from __future__ import annotations

import datetime as dt
import json

import pyarrow as pa
import typer
from typer.testing import CliRunner

from healthscore.cli.validate import validate
from healthscore.store import Store

PROFILE = """\
name: seats
bands:
  - {name: Good, min: 70}
  - {name: Poor, min: 0}
components:
  - name: size
    weight: 1
    measures:
      - metric: seats
        linear: {worst: 0, best: 10}
"""


def _app() -> typer.Typer:
    app = typer.Typer()
    app.command()(validate)

    @app.callback()
    def main() -> None:
        """Test application."""

    return app


def _store(path) -> None:
    store = Store.open(path)
    count = 40
    store.insert(
        "accounts",
        pa.table(
            {
                "account_id": [f"a{i}" for i in range(count)],
                "seats": pa.array([i % 10 for i in range(count)], pa.int64()),
                "churned": [i % 10 < 3 for i in range(count)],
                "load_id": ["test"] * count,
            }
        ),
    )
    store.close()


def test_validate_writes_page_and_json(tmp_path) -> None:
    _store(tmp_path / "s.duckdb")
    profile = tmp_path / "p.yaml"
    profile.write_text(PROFILE)

    result = CliRunner().invoke(
        _app(),
        [
            "validate",
            "--store",
            str(tmp_path / "s.duckdb"),
            "--profile",
            str(profile),
            "--profile",
            str(profile),
            "--as-of",
            "2024-03-31",
            "--bootstrap",
            "20",
            "--out",
            str(tmp_path / "out"),
        ],
        env={"COLUMNS": "200"},
    )

    assert result.exit_code == 0, result.output
    document = json.loads((tmp_path / "out" / "validation.json").read_text())
    assert len(document["profiles"]) == 2
    assert document["profiles"][0]["split"]["kind"] == "all-accounts"
    assert document["profiles"][0]["metrics"]["roc_auc"]["estimate"] == 1.0
    assert document["bootstrap"]["resamples"] == 20
    assert (tmp_path / "out" / "validation.html").exists()
    assert "1.000" in result.output


def test_validate_future_date_fails(tmp_path) -> None:
    _store(tmp_path / "s.duckdb")
    future = (dt.datetime.now(dt.UTC).date() + dt.timedelta(days=3)).isoformat()

    result = CliRunner().invoke(
        _app(),
        ["validate", "--store", str(tmp_path / "s.duckdb"), "--as-of", future],
    )

    assert result.exit_code == 3
    assert "future" in result.output


def test_validate_rejects_too_few_resamples(tmp_path) -> None:
    _store(tmp_path / "s.duckdb")

    result = CliRunner().invoke(
        _app(),
        [
            "validate",
            "--store",
            str(tmp_path / "s.duckdb"),
            "--as-of",
            "2024-03-31",
            "--bootstrap",
            "1",
            "--out",
            str(tmp_path / "out"),
        ],
        env={"COLUMNS": "200"},
    )

    assert result.exit_code == 2
    assert "--bootstrap" in result.output
    assert "greater than or equal to 10" in result.output
    assert not (tmp_path / "out").exists()


NPS_PROFILE = """\
name: nps-only
components:
  - name: voice
    weight: 1
    measures:
      - metric: nps
        linear: {worst: -100, best: 100}
"""


def test_validate_all_unknown_prints_reason(tmp_path) -> None:
    _store(tmp_path / "s.duckdb")
    profile = tmp_path / "p.yaml"
    profile.write_text(NPS_PROFILE)

    result = CliRunner().invoke(
        _app(),
        [
            "validate",
            "--store",
            str(tmp_path / "s.duckdb"),
            "--profile",
            str(profile),
            "--as-of",
            "2024-03-31",
            "--bootstrap",
            "10",
            "--out",
            str(tmp_path / "out"),
        ],
        env={"COLUMNS": "400"},
    )

    assert result.exit_code == 0, result.output
    assert "nps-only: no figures, because all 40 accounts" in result.output
    page = (tmp_path / "out" / "validation.html").read_text()
    assert 'id="metrics-notes"' in page
    document = json.loads((tmp_path / "out" / "validation.json").read_text())
    assert "are Unknown" in document["profiles"][0]["reason"]


def test_validate_option_names_match_predict(tmp_path) -> None:
    _store(tmp_path / "s.duckdb")
    profile = tmp_path / "p.yaml"
    profile.write_text(PROFILE)

    result = CliRunner().invoke(
        _app(),
        [
            "validate",
            "--store",
            str(tmp_path / "s.duckdb"),
            "--profile",
            str(profile),
            "--as-of",
            "2024-03-31",
            "--bootstraps",
            "30",
            "--horizon-days",
            "60",
            "--out",
            str(tmp_path / "out"),
        ],
        env={"COLUMNS": "200"},
    )

    assert result.exit_code == 0, result.output
    document = json.loads((tmp_path / "out" / "validation.json").read_text())
    assert document["bootstrap"]["resamples"] == 30
