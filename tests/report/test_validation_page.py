from __future__ import annotations

from pathlib import Path

import pytest

from healthscore.predict.validation_report import write_validation_report
from tests.predict.test_validation_report import _document

pytestmark = pytest.mark.browser


def _open(chromium, path: Path, width: int) -> tuple[object, list, list]:
    page = chromium.new_page(viewport={"width": width, "height": 900})
    requests: list[str] = []
    errors: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on(
        "console",
        lambda message: (
            errors.append(message.text) if message.type == "error" else None
        ),
    )
    page.goto(path.as_uri())
    page.wait_for_load_state("load")
    return page, requests, errors


def test_validation_page_offline_and_readable(chromium, tmp_path: Path) -> None:
    html_path, _ = write_validation_report(_document(), tmp_path)

    page, requests, errors = _open(chromium, html_path, 1280)
    metric_rows = page.eval_on_selector_all(
        "#metrics tbody td[data-metric]", "cells => cells.map(c => c.dataset.metric)"
    )
    bars = page.eval_on_selector_all("#churn-chart-1 rect.bar", "r => r.length")
    page.screenshot(path=str(tmp_path / "validation.png"), full_page=True)
    page.close()

    assert requests == [html_path.as_uri()]
    assert errors == []
    assert metric_rows == [
        "roc_auc",
        "pr_auc",
        "top_decile_lift",
        "brier_score",
        "expected_calibration_error",
    ]
    assert bars == 3
    assert (tmp_path / "validation.png").stat().st_size > 10_000


def test_validation_page_fits_phone_width(chromium, tmp_path: Path) -> None:
    html_path, _ = write_validation_report(_document(), tmp_path)

    page, _, errors = _open(chromium, html_path, 390)
    overflow = page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    page.close()

    assert overflow == 0
    assert errors == []
