from __future__ import annotations

import json

import numpy as np
import pandas as pd

from healthscore.predict.validation import Split, validate_scores
from healthscore.predict.validation_report import (
    render_validation_html,
    write_validation_report,
)


def _document(unknown: bool = False, description: str = "Every account.") -> dict:
    rng = np.random.default_rng(2)
    score = np.full(400, np.nan) if unknown else rng.uniform(0, 100, 400)
    churned = rng.random(400) < (100 - score) / 200
    band = np.where(score >= 70, "Good", np.where(score >= 40, "Average", "Poor"))
    frame = pd.DataFrame(
        {
            "account_id": [f"a{i}" for i in range(400)],
            "score": score,
            "band": band,
            "churned": churned,
        }
    )
    split = Split(kind="all-accounts", description=description, as_of="2024-03-31")
    result = validate_scores(
        frame,
        profile={"name": "<b>hand</b>", "hash": "abc", "source": None},
        bands=("Good", "Average", "Poor"),
        split=split,
        resamples=30,
    )
    return {
        "as_of": "2024-03-31",
        "generated_at": "2024-04-01T00:00:00+00:00",
        "bootstrap": {
            "method": "percentile",
            "resamples": 30,
            "level": 0.95,
            "seed": 0,
        },
        "profiles": [result, result],
    }


def test_render_validation_html_escapes_names() -> None:
    page = render_validation_html(_document())

    assert page.startswith("<!DOCTYPE html>")
    assert "<b>hand</b>" not in page
    assert "&lt;b&gt;hand&lt;/b&gt;" in page
    assert 'id="metrics"' in page
    assert "All accounts." in page
    assert "not available, because the outcome has no dates" in page


def test_write_validation_report_writes_both(tmp_path) -> None:
    document = _document()

    html_path, json_path = write_validation_report(document, tmp_path / "out")

    assert html_path.name == "validation.html"
    loaded = json.loads(json_path.read_text(encoding="utf-8"))
    assert (
        loaded["profiles"][0]["metrics"]["roc_auc"]["estimate"]
        == (document["profiles"][0]["metrics"]["roc_auc"]["estimate"])
    )
    assert loaded["profiles"][0]["lead_time"]["available"] is False
    assert "NaN" not in json_path.read_text(encoding="utf-8")


def test_render_validation_html_all_unknown_reason() -> None:
    page = render_validation_html(_document(unknown=True))

    assert 'id="metrics-notes"' in page
    assert "no figures, because all 400 accounts with a known outcome are Unknown" in (
        page
    )


def test_render_validation_html_names_split_once() -> None:
    description = "All accounts, no fitting: the outcome has no dates."

    page = render_validation_html(_document(description=description))

    assert "<strong>All accounts</strong>, no fitting: the outcome" in page
    assert "All accounts. All accounts" not in page


def test_render_validation_html_short_bin_labels() -> None:
    page = render_validation_html(_document())

    assert 'data-label="10–20"' in page
    assert "10%–20%" not in page


def test_write_validation_report_round_bin_edges(tmp_path) -> None:
    _, json_path = write_validation_report(_document(), tmp_path / "out")

    text = json_path.read_text(encoding="utf-8")
    calibration = json.loads(text)["profiles"][0]["calibration"]
    assert [row["low"] for row in calibration] == [i / 10 for i in range(10)]
    assert "0.30000000000000004" not in text
