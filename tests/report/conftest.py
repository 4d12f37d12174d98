"""Report data shared by the report tests, and the Chromium launcher."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from healthscore.report import ReportData

CHROMIUM = Path("/usr/bin/chromium")
REQUIRE_BROWSER_ENV = "HEALTHSCORE_REQUIRE_BROWSER"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
BANDS = ("Good", "Average", "Poor")
COMPONENT_COLUMNS = ["component", "average_score", "accounts_with_data"]


def make_accounts(rows: list[dict[str, object]]) -> pd.DataFrame:
    """Build an accounts frame with every report column from a few dicts."""
    columns = [
        "account_id",
        "name",
        "segment",
        "arr",
        "score",
        "band",
        "coverage",
        "weakest_component",
        "churned",
    ]
    return pd.DataFrame(rows, columns=columns)


def make_data(accounts: pd.DataFrame, **changes: object) -> ReportData:
    """Wrap an accounts frame in ReportData with small fixed components."""
    fields: dict[str, object] = {
        "title": "Portfolio health",
        "as_of": dt.date(2026, 12, 4),
        "profile_names": ("saas-default",),
        "profile_hashes": ("3f2a9c0d1e2b3c4d5e6f",),
        "bands": BANDS,
        "accounts": accounts,
        "components": pd.DataFrame(
            {
                "component": ["engagement", "support"],
                "average_score": [61.5, float("nan")],
                "accounts_with_data": [5, 0],
            }
        ),
        "churn_by_band": None,
        "roc_auc": None,
    }
    fields.update(changes)
    return ReportData(**fields)  # type: ignore[arg-type]


@pytest.fixture
def small_accounts() -> pd.DataFrame:
    """Seven accounts: four Poor with tied scores, one Unknown, one with no name."""
    return make_accounts(
        [
            {
                "account_id": "a1",
                "name": "<script>alert(1)</script>",
                "segment": "SMB",
                "arr": 1000.0,
                "score": 12.0,
                "band": "Poor",
                "coverage": 0.9,
                "weakest_component": "engagement",
                "churned": True,
            },
            {
                "account_id": "a2",
                "name": "Beta & Co",
                "segment": "Enterprise",
                "arr": 50000.0,
                "score": 35.0,
                "band": "Poor",
                "coverage": 1.0,
                "weakest_component": "support",
                "churned": False,
            },
            {
                "account_id": "a3",
                "name": "Gamma",
                "segment": "SMB",
                "arr": 3000.0,
                "score": 12.0,
                "band": "Poor",
                "coverage": 0.5,
                "weakest_component": "feedback",
                "churned": None,
            },
            {
                "account_id": "a4",
                "name": "Delta",
                "segment": "Mid-market",
                "arr": 20000.0,
                "score": 55.0,
                "band": "Average",
                "coverage": 1.0,
                "weakest_component": "adoption",
                "churned": False,
            },
            {
                "account_id": "a5",
                "name": None,
                "segment": "SMB",
                "arr": 5000.0,
                "score": 80.0,
                "band": "Good",
                "coverage": 1.0,
                "weakest_component": "support",
                "churned": False,
            },
            {
                "account_id": "a6",
                "name": "Epsilon",
                "segment": "SMB",
                "arr": 7000.0,
                "score": float("nan"),
                "band": None,
                "coverage": 0.2,
                "weakest_component": None,
                "churned": None,
            },
            {
                "account_id": "a7",
                "name": "Zeta",
                "segment": "SMB",
                "arr": float("nan"),
                "score": 12.0,
                "band": "Poor",
                "coverage": 0.8,
                "weakest_component": "engagement",
                "churned": True,
            },
        ]
    )


def make_portfolio(count: int, seed: int = 7) -> pd.DataFrame:
    """Draw a seeded portfolio with Unknown scores and missing ARR mixed in."""
    rng = np.random.default_rng(seed)
    score = rng.uniform(0, 100, count).round(1)
    score[rng.random(count) < 0.05] = np.nan
    band = np.select([score >= 70, score >= 40, score >= 0], BANDS, default="")
    arr = rng.lognormal(10, 1, count).round(0)
    arr[rng.random(count) < 0.02] = np.nan
    return pd.DataFrame(
        {
            "account_id": [f"acc-{i:06d}" for i in range(count)],
            "name": [f"Customer {i}" for i in range(count)],
            "segment": rng.choice(["SMB", "Mid-market", "Enterprise"], count),
            "arr": arr,
            "score": score,
            "band": pd.Series(band, dtype=object).replace("", None),
            "coverage": rng.uniform(0.5, 1, count).round(2),
            "weakest_component": rng.choice(["engagement", "support"], count),
            "churned": rng.random(count) < 0.1,
        }
    )


@pytest.fixture(scope="session")
def chromium() -> Iterator[object]:
    """Launch Debian's Chromium through Playwright, or skip when it is missing.

    With ``HEALTHSCORE_REQUIRE_BROWSER=1`` a missing browser fails the test instead.
    """
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} is missing; install it with `apt-get install chromium`"
        if os.environ.get(REQUIRE_BROWSER_ENV) == "1":
            pytest.fail(f"{reason} ({REQUIRE_BROWSER_ENV}=1 requires a browser)")
        pytest.skip(reason)

    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()
