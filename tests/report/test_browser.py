from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from healthscore.report import write_report
from tests.report.conftest import BANDS, make_data, make_portfolio

pytestmark = pytest.mark.browser


def _portfolio_data() -> object:
    accounts = make_portfolio(2_000)
    accounts.loc[17, ["name", "score", "band", "arr"]] = [
        "<script>alert(1)</script>",
        0.0,
        "Poor",
        1_000_000.0,
    ]
    churn = pd.DataFrame(
        {
            "band": [*BANDS, "Unknown"],
            "accounts": [600, 600, 700, 100],
            "churned": [18, 60, 160, 10],
            "churn_rate": [0.03, 0.1, 160 / 700, 0.1],
        }
    )
    return make_data(
        accounts,
        title="Acme Cloud portfolio",
        churn_by_band=churn,
        roc_auc=0.74,
        notes=("Scores from the seeded test portfolio of 2,000 accounts.",),
    )


def _open_report(chromium, path: Path, width: int) -> tuple[object, list, list]:
    page = chromium.new_page(viewport={"width": width, "height": 900})
    requests: list[str] = []
    errors: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.on(
        "console",
        lambda message: (
            errors.append(message.text) if message.type == "error" else None
        ),
    )
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("dialog", lambda dialog: errors.append(f"dialog: {dialog.message}"))
    page.goto(path.as_uri())
    page.wait_for_load_state("load")
    return page, requests, errors


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line]


def test_report_in_browser_is_offline(chromium, tmp_path: Path) -> None:
    path = write_report(_portfolio_data(), tmp_path / "report.html")

    page, requests, errors = _open_report(chromium, path, 1280)
    bar_labels = page.eval_on_selector_all(
        "#band-chart rect.bar", "rects => rects.map(r => r.dataset.label)"
    )
    first_account = page.get_attribute(
        "#at-risk tbody tr:first-child td[data-account-id]", "data-account-id"
    )
    first_name = page.inner_text("#at-risk tbody tr:first-child td:first-child")
    page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
    page.close()

    assert requests == [path.as_uri()]
    assert all(url.startswith("file:") for url in requests)
    assert errors == []
    assert bar_labels == [*BANDS, "Unknown"]
    assert first_account == "acc-000017"
    assert first_name.startswith("<script>alert(1)</script>")
    assert (tmp_path / "report.png").stat().st_size > 10_000


def test_report_in_browser_fits_phone_width(chromium, tmp_path: Path) -> None:
    path = write_report(_portfolio_data(), tmp_path / "report.html")

    page, requests, errors = _open_report(chromium, path, 390)
    overflow = page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    page.screenshot(path=str(tmp_path / "report-phone.png"), full_page=True)
    page.close()

    assert overflow == 0
    assert errors == []
    assert requests == [path.as_uri()]


def test_report_in_browser_prints(chromium, tmp_path: Path) -> None:
    path = write_report(_portfolio_data(), tmp_path / "report.html")

    page, _, errors = _open_report(chromium, path, 1280)
    page.emulate_media(media="print")
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    pdf = page.pdf(format="A4", print_background=True)
    page.close()

    assert background == "rgb(255, 255, 255)"
    assert pdf.startswith(b"%PDF")
    assert errors == []


def test_report_in_browser_without_arr(chromium, tmp_path: Path) -> None:
    data = _portfolio_data()
    data = replace(data, accounts=data.accounts.assign(arr=float("nan")))
    path = write_report(data, tmp_path / "report.html")

    page, requests, errors = _open_report(chromium, path, 1280)
    worst_tile = page.inner_text('[data-kpi="worst-arr"]')
    arr_card = page.inner_text("#arr-at-risk-accounts")
    body = page.inner_text("body")
    page.screenshot(path=str(tmp_path / "report-noarr.png"), full_page=True)
    page.close()

    phone, _, phone_errors = _open_report(chromium, path, 390)
    overflow = phone.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    phone.close()

    assert _lines(worst_tile) == ["ARR in Poor", "–", "no ARR data"]
    assert _lines(arr_card) == [
        "ARR at risk",
        "No account carries ARR, so none can be ranked by ARR.",
    ]
    assert "– ARR" not in body
    assert " 1 accounts" not in body
    assert errors == []
    assert requests == [path.as_uri()]
    assert overflow == 0
    assert phone_errors == []
