import datetime as dt
import json
import re
import textwrap

import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from healthscore.cli import app as main_app
from healthscore.cli.predict import (
    DEFAULT_BOOTSTRAPS,
    DEFAULT_HORIZON_DAYS,
    format_drivers,
    predict,
)
from healthscore.predict import predictions
from healthscore.store import Store
from tests.predict.test_predictions import (
    _insert_other_segment,
    _insert_scores,
    _insert_undated_churn,
    _undated_store,
    build_history_store,
)

AS_OF = "2024-12-31"


def _predict_app() -> typer.Typer:
    app = typer.Typer()
    app.command()(predict)

    # A callback keeps `predict` a subcommand, as in the healthscore app.
    @app.callback()
    def _main() -> None:
        pass

    return app


@pytest.fixture(scope="module")
def store_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("predict") / "store.duckdb"
    build_history_store(path).close()
    return path


def _run(app, *args):
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})
    return result


def _predict(store, *args):
    return _run(
        _predict_app(),
        "predict",
        "--store",
        str(store),
        "--as-of",
        AS_OF,
        "--horizon-days",
        "30",
        "--bootstraps",
        "10",
        *args,
    )


@pytest.fixture(scope="module")
def predicted(store_path):
    result = _predict(store_path, "-n", "5")
    assert result.exit_code == 0, result.output
    return result


def test_predict_prints_riskiest_accounts(predicted):
    lines = predicted.output.splitlines()
    rows = [line for line in lines if line.startswith("│ A")]

    assert "5 accounts most at risk" in predicted.output
    assert "90% interval" in predicted.output
    assert len(rows) == 5
    # Fading accounts A70-A79 are the only active ones with sparse logins.
    assert all(row.startswith("│ A7") for row in rows)
    assert re.search(r"days_since_last_event = [\d,.]+ [+-]\d+\.\d\d", predicted.output)


def test_predict_stores_every_active_account(store_path, predicted):
    with Store.open(store_path, create=False) as store:
        rows, drivers = predictions.latest_predictions(store)

    assert len(rows) == 50
    assert set(rows["horizon_days"]) == {30}
    assert len(drivers) == 50 * predictions.DEFAULT_TOP_DRIVERS


def test_predict_survival_table(tmp_path):
    path = tmp_path / "store.duckdb"
    with build_history_store(path) as store:
        bands = {f"A{n:02d}": "Good" if n < 40 else "Poor" for n in range(80)}
        _insert_scores(store, bands, dt.date(2024, 9, 1))

    result = _predict(path, "--survival", "--bootstraps", "0")

    assert result.exit_code == 0, result.output
    assert "Time to churn per band" in result.output
    good = next(line for line in result.output.splitlines() if "│ Good" in line)
    assert "not reached" in good
    poor = next(line for line in result.output.splitlines() if "│ Poor" in line)
    assert "│       40 │      30 │" in poor


def test_predict_survival_without_bands_fails(store_path):
    result = _predict(store_path, "--survival", "--bootstraps", "0")

    assert result.exit_code == 4
    assert "no account has both a duration and a band" in result.output
    assert "Predicted churn" not in result.output


def test_predict_rejects_unknown_model(store_path):
    result = _predict(store_path, "--model", "forest")

    assert result.exit_code == 2


def test_predict_rejects_future_date(store_path):
    result = _run(
        _predict_app(), "predict", "--store", str(store_path), "--as-of", "2999-01-01"
    )

    assert result.exit_code == 3
    assert "in the future" in result.output


def test_predict_missing_store_fails(tmp_path):
    result = _predict(tmp_path / "missing.duckdb")

    assert result.exit_code == 6
    assert "not found" in result.output


def test_format_drivers_rank_order_and_values():
    drivers = pd.DataFrame(
        {
            "rank": [2, 1, 3],
            "feature": ["contract", "tenure", "nps"],
            "contribution": [0.5, 1.234, -0.01],
            "value": [float("nan"), 3.0, float("nan")],
            "text_value": ["Month-to-month", None, None],
        }
    )

    text = format_drivers(drivers)

    assert text == "tenure = 3 +1.23, contract = Month-to-month +0.50, nps -0.01"


def test_predict_cli_defaults_match_library():
    assert DEFAULT_HORIZON_DAYS == predictions.DEFAULT_HORIZON_DAYS
    assert DEFAULT_BOOTSTRAPS == predictions.DEFAULT_BOOTSTRAPS


@pytest.fixture(scope="module")
def scored_and_predicted(tmp_path_factory):
    folder = tmp_path_factory.mktemp("explain")
    path = folder / "store.duckdb"
    build_history_store(path).close()
    profile = folder / "profile.yaml"
    profile.write_text(
        textwrap.dedent(
            """\
            name: usage-only
            components:
              - name: usage
                weight: 1
                measures:
                  - metric: active_days_30d
                    weight: 1
                    linear: {worst: 0, best: 20}
            """
        )
    )
    scored = _run(
        main_app, "score", "--store", str(path), "--as-of", AS_OF, "-p", str(profile)
    )
    assert scored.exit_code == 0, scored.output
    result = _predict(path)
    assert result.exit_code == 0, result.output
    return path


def test_explain_shows_stored_prediction(scored_and_predicted):
    result = _run(main_app, "explain", "A79", "--store", str(scored_and_predicted))

    assert result.exit_code == 0, result.output
    assert "Churn probability" in result.output
    assert "within 30 days after 2024-12-31" in result.output
    assert "active_days_30d" in result.output.split("Churn probability")[1]


def test_explain_without_prediction_has_no_churn_line(tmp_path):
    path = tmp_path / "store.duckdb"
    build_history_store(path).close()
    scored = _run(main_app, "score", "--store", str(path), "--as-of", AS_OF)
    assert scored.exit_code == 0, scored.output

    result = _run(main_app, "explain", "A79", "--store", str(path))

    assert result.exit_code == 0, result.output
    assert "Churn probability" not in result.output


def test_export_includes_stored_prediction(scored_and_predicted, tmp_path):
    out = tmp_path / "scores.csv"

    result = _run(
        main_app,
        "export",
        "scores",
        "--out",
        str(out),
        "--store",
        str(scored_and_predicted),
    )

    assert result.exit_code == 0, result.output
    frame = pd.read_csv(out).set_index("account_id")
    with Store.open(scored_and_predicted, create=False) as store:
        stored, drivers = predictions.latest_predictions(store)
    stored = stored.set_index("account_id")
    active = frame.loc[stored.index]
    assert active["churn_probability"].tolist() == pytest.approx(
        stored["probability"].tolist(), abs=1e-10
    )
    assert active["churn_low"].tolist() == pytest.approx(
        stored["low"].tolist(), abs=1e-10
    )
    assert set(active["churn_horizon_days"]) == {30}
    assert frame.loc["A00", "churn_as_of"] == AS_OF
    parsed = json.loads(frame.loc["A79", "churn_drivers"])
    expected = drivers[drivers["account_id"] == "A79"]
    assert [item["feature"] for item in parsed] == list(expected["feature"])
    # Only the 50 active accounts are scored, and each has a prediction.
    assert frame["churn_probability"].notna().all()
    assert len(frame) == 50


USAGE_PROFILE = """\
name: usage-only
{applies_to}components:
  - name: usage
    weight: 1
    measures:
      - metric: active_days_30d
        weight: 1
        linear: {{worst: 0, best: 20}}
"""


def _two_segment_store(folder):
    """Write the SMB history store plus 20 active accounts of segment Other."""
    path = folder / "store.duckdb"
    with build_history_store(path) as store:
        _insert_other_segment(store)
    return path


def _profile(folder, applies_to=""):
    path = folder / "profile.yaml"
    path.write_text(USAGE_PROFILE.format(applies_to=applies_to))
    return path


def _predicted_ids(path) -> set[str]:
    with Store.open(path, create=False) as store:
        rows, _ = predictions.latest_predictions(store)
    return set(rows["account_id"])


def test_predict_keeps_to_profile_segments(tmp_path):
    path = _two_segment_store(tmp_path)
    profile = _profile(tmp_path, "applies_to:\n  segments: [SMB]\n")

    result = _predict(path, "-p", str(profile), "--bootstraps", "0")

    assert result.exit_code == 0, result.output
    # On the 6 observation dates from 2024-07-04 to 2024-12-01, 80 SMB accounts
    # are active on the first 4, 70 on 2024-11-01 and 60 on 2024-12-01. The 20
    # Other accounts would add 120 rows.
    assert "Trained on 450 rows" in result.output
    assert _predicted_ids(path) == {f"A{n:02d}" for n in [*range(40), *range(70, 80)]}


def test_predict_segment_option(tmp_path):
    path = _two_segment_store(tmp_path)
    profile = _profile(tmp_path)

    result = _predict(path, "-p", str(profile), "--segment", "SMB", "--bootstraps", "0")

    assert result.exit_code == 0, result.output
    assert not any(account.startswith("O") for account in _predicted_ids(path))
    assert len(_predicted_ids(path)) == 50


def test_predict_segment_outside_profile_fails(tmp_path):
    path = _two_segment_store(tmp_path)
    profile = _profile(tmp_path, "applies_to:\n  segments: [SMB]\n")

    result = _predict(path, "-p", str(profile), "--segment", "Other")

    assert result.exit_code == 3
    assert "'Other'" in result.output
    assert _predicted_ids(path) == set()


def test_predict_observed_from_after_as_of_fails(tmp_path):
    path = tmp_path / "store.duckdb"
    with build_history_store(path) as store:
        bands = {f"A{n:02d}": "Good" if n < 40 else "Poor" for n in range(80)}
        _insert_scores(store, bands, dt.date(2024, 9, 1))

    result = _predict(path, "--survival", "--observed-from", "2025-01-01")

    assert result.exit_code == 3
    assert "'2025-01-01' is after as_of '2024-12-31'" in result.output
    assert "Traceback" not in result.output


def test_predict_unknown_tenure_metric_stores_nothing(tmp_path):
    path = tmp_path / "store.duckdb"
    with build_history_store(path) as store:
        _insert_scores(store, {"A00": "Good"}, dt.date(2024, 9, 1))

    result = _predict(path, "--survival", "--tenure-metric", "nosuch")

    assert result.exit_code == 4
    assert "'nosuch'" in result.output
    assert _predicted_ids(path) == set()


def test_predict_tenure_metric_without_survival_fails(tmp_path):
    path = tmp_path / "store.duckdb"
    build_history_store(path).close()

    result = _predict(path, "--tenure-metric", "tenure")

    assert result.exit_code == 3
    assert "--tenure-metric is set without --survival" in result.output
    assert _predicted_ids(path) == set()


def test_predict_survival_warns_of_undated_churn(tmp_path):
    path = tmp_path / "store.duckdb"
    with build_history_store(path) as store:
        _insert_undated_churn(store)
        bands = {f"A{n:02d}": "Good" if n < 40 else "Poor" for n in range(80)}
        _insert_scores(store, bands, dt.date(2024, 9, 1))

    result = _predict(path, "--survival", "--bootstraps", "0")

    assert result.exit_code == 0, result.output
    assert "5 churned accounts have no churned_at" in result.output
    assert "--tenure-metric" in result.output


def test_predict_rejects_one_bootstrap(store_path):
    result = _predict(store_path, "--bootstraps", "1")

    assert result.exit_code == 3
    assert "at least 10 refits" in result.output
    assert "Predicted churn" not in result.output


def test_predict_headline_without_churn_dates(tmp_path):
    path = tmp_path / "store.duckdb"
    _undated_store(path).close()
    profile = tmp_path / "profile.yaml"
    profile.write_text(
        "name: contract\ncomponents:\n  - name: plan\n    weight: 1\n"
        "    measures:\n      - metric: contract\n        weight: 1\n"
        "        category: {points: {Monthly: 0, Yearly: 100}}\n"
    )

    result = _predict(path, "-p", str(profile))

    assert result.exit_code == 0, result.output
    assert "Predicted the recorded churn flag as of 2024-12-31" in result.output
    assert "within 30 days" not in result.output
