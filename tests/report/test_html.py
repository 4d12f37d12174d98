from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from healthscore.exceptions import InputDataError
from healthscore.report import render_report, write_report
from tests.report.conftest import (
    BANDS,
    COMPONENT_COLUMNS,
    make_accounts,
    make_data,
    make_portfolio,
)
from tests.report.dom import parse_page, table_rows


def kpi_value(page: str, key: str) -> str:
    return parse_page(page).find("div", **{"data-kpi": key}).find(class_="value").text()


def kpi_detail(page: str, key: str) -> str:
    tile = parse_page(page).find("div", **{"data-kpi": key})
    return tile.find(class_="detail").text()


def page_captions(page: str) -> dict[str, str]:
    """Return the caption of each card that has one, by section id."""
    captions = {}
    for section in parse_page(page).find_all("section", class_="card"):
        found = section.find_all("p", class_="caption")
        if found:
            captions[section.attrs["id"]] = found[0].text()
    return captions


def test_render_report_escapes_account_name(small_accounts: pd.DataFrame) -> None:
    page = render_report(make_data(small_accounts))

    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "Beta &amp; Co" in page
    assert "<script" not in page


def test_render_report_escapes_every_text_field() -> None:
    evil = '"><img src=x onerror=alert(1)>'
    accounts = make_accounts(
        [
            {
                "account_id": evil,
                "name": None,
                "segment": evil,
                "arr": 10.0,
                "score": 5.0,
                "band": "Poor",
                "weakest_component": evil,
            }
        ]
    )
    components = pd.DataFrame(
        {"component": [evil], "average_score": [10.0], "accounts_with_data": [1]}
    )
    data = make_data(
        accounts,
        title=evil,
        profile_names=(evil,),
        profile_hashes=(evil,),
        components=components,
        notes=(evil,),
    )

    page = render_report(data)

    assert "<img" not in page
    assert page.count("&quot;&gt;&lt;img src=x onerror=alert(1)&gt;") >= 6
    parse_page(page)


def test_render_report_escapes_band_names() -> None:
    bands = ("<b>Top</b>", "Poor")
    accounts = make_accounts(
        [{"account_id": "a", "score": 90.0, "band": "<b>Top</b>", "arr": 1.0}]
    )

    page = render_report(make_data(accounts, bands=bands))

    assert "<b>" not in page
    labels = [
        rect.attrs["data-label"]
        for rect in parse_page(page).find("svg", id="band-chart").find_all("rect")
    ]
    assert labels == ["<b>Top</b>", "Poor", "Unknown"]


def test_render_report_loads_nothing_external(small_accounts: pd.DataFrame) -> None:
    page = render_report(make_data(small_accounts, notes=("Data from the CRM",)))

    assert "http://" not in page
    assert "https://" not in page
    assert "<script src" not in page
    assert "<link" not in page
    assert "url(" not in page
    assert "@import" not in page
    assert "default-src 'none'" in page
    assert '<meta name="viewport"' in page


def test_render_report_band_counts_match_data(small_accounts: pd.DataFrame) -> None:
    page = parse_page(render_report(make_data(small_accounts)))

    rows = table_rows(page, "band-table")
    bars = page.find("svg", id="band-chart").find_all("rect", class_="bar")

    assert rows == [
        ["Good", "1", "14.3%", "5,000"],
        ["Average", "1", "14.3%", "20,000"],
        ["Poor", "4", "57.1%", "54,000"],
        ["Unknown", "1", "14.3%", "7,000"],
    ]
    assert [bar.attrs["data-label"] for bar in bars] == [*BANDS, "Unknown"]
    assert [bar.find("title").text() for bar in bars] == [
        "Good: 1 · 14.3%",
        "Average: 1 · 14.3%",
        "Poor: 4 · 57.1%",
        "Unknown: 1 · 14.3%",
    ]


def test_render_report_bar_heights_follow_counts(small_accounts: pd.DataFrame) -> None:
    page = parse_page(render_report(make_data(small_accounts)))

    bars = page.find("svg", id="band-chart").find_all("rect", class_="bar")
    heights = [float(bar.attrs["height"]) for bar in bars]

    # The axis runs 0-4 over 220 px, so one account is 55 px.
    assert heights == pytest.approx([55.0, 55.0, 220.0, 55.0], abs=0.1)


def test_render_report_kpis(small_accounts: pd.DataFrame) -> None:
    page = render_report(make_data(small_accounts))

    assert kpi_value(page, "accounts") == "7"
    assert kpi_value(page, "scored") == "6"
    assert kpi_value(page, "unknown") == "1"
    assert kpi_value(page, "total-arr") == "86.0k"
    assert kpi_value(page, "worst-arr") == "54.0k"
    assert kpi_value(page, "average-score") == "34.3"


def test_render_report_histogram_bins(small_accounts: pd.DataFrame) -> None:
    extra = make_accounts(
        [
            {"account_id": "z0", "score": 0.0, "band": "Poor"},
            {"account_id": "z10", "score": 10.0, "band": "Poor"},
            {"account_id": "z100", "score": 100.0, "band": "Good"},
        ]
    )
    accounts = pd.concat([small_accounts, extra], ignore_index=True)

    page = parse_page(render_report(make_data(accounts)))
    bins = page.find("svg", id="score-histogram").find_all("rect", class_="bin")

    assert [b.find("title").text() for b in bins] == [
        "0–10: 1",
        "10–20: 4",
        "20–30: 0",
        "30–40: 1",
        "40–50: 0",
        "50–60: 1",
        "60–70: 0",
        "70–80: 0",
        "80–90: 1",
        "90–100: 1",
    ]


def test_render_report_histogram_colours_by_band(
    small_accounts: pd.DataFrame,
) -> None:
    page = parse_page(render_report(make_data(small_accounts)))
    bins = page.find("svg", id="score-histogram").find_all("rect", class_="bin")
    band_fill = {
        row.find("td").text(): row.find(class_="dot").attrs["style"].split(":")[1]
        for row in page.find("table", id="band-table").find("tbody").find_all("tr")
    }

    assert bins[1].attrs["fill"] == band_fill["Poor"]
    assert bins[5].attrs["fill"] == band_fill["Average"]
    assert bins[8].attrs["fill"] == band_fill["Good"]


def test_render_report_at_risk_order(small_accounts: pd.DataFrame) -> None:
    page = parse_page(render_report(make_data(small_accounts)))

    cells = page.find("table", id="at-risk").find_all("td")
    ids = [td.attrs["data-account-id"] for td in cells if "data-account-id" in td.attrs]
    rows = table_rows(page, "at-risk")

    # Ties on score 12 go to the higher ARR first, and missing ARR last.
    assert ids == ["a3", "a1", "a7", "a2"]
    assert rows[0] == ["Gammaa3", "12.0", "Poor", "3,000", "feedback", "SMB", "50.0%"]
    assert rows[2][3] == "–"


def test_render_report_arr_at_risk_order(small_accounts: pd.DataFrame) -> None:
    page = parse_page(render_report(make_data(small_accounts)))

    rows = table_rows(page, "arr-at-risk")

    assert [row[1] for row in rows] == ["50,000", "3,000", "1,000", "–"]
    assert rows[0][0] == "Beta & Coa2"


def test_render_report_at_risk_without_poor_accounts() -> None:
    accounts = make_accounts(
        [
            {"account_id": "g", "score": 90.0, "band": "Good", "arr": 1.0},
            {"account_id": "m", "score": 50.0, "band": "Average", "arr": 1.0},
            {"account_id": "u", "score": float("nan"), "band": None, "arr": 1.0},
        ]
    )

    page = render_report(make_data(accounts))
    rows = table_rows(parse_page(page), "at-risk")

    assert [row[0] for row in rows] == ["m", "g"]
    assert "No account is in Poor, so these are all 2 scored accounts" in page
    assert 'id="arr-at-risk"' not in page
    assert kpi_value(page, "worst-arr") == "–"


def test_render_report_lists_top_25_only() -> None:
    accounts = make_accounts(
        [
            {"account_id": f"p{i:02d}", "score": float(i), "band": "Poor", "arr": i}
            for i in range(60)
        ]
    )

    page = parse_page(render_report(make_data(accounts)))

    assert len(table_rows(page, "at-risk")) == 25
    assert len(table_rows(page, "arr-at-risk")) == 25
    assert table_rows(page, "at-risk")[-1][0] == "p24"
    assert table_rows(page, "arr-at-risk")[0][0] == "p59"


def test_render_report_empty_frames() -> None:
    accounts = make_accounts([])
    components = pd.DataFrame(columns=COMPONENT_COLUMNS)

    page = render_report(make_data(accounts, components=components))
    tree = parse_page(page)

    assert kpi_value(page, "accounts") == "0"
    assert kpi_value(page, "average-score") == "–"
    assert kpi_value(page, "total-arr") == "–"
    assert "No scored accounts." in page
    assert "No component scores." in page
    assert len(tree.find("svg", id="band-chart").find_all("rect", class_="bar")) == 4
    assert table_rows(tree, "band-table")[0] == ["Good", "0", "–", "–"]


def test_render_report_accepts_minimal_columns() -> None:
    accounts = pd.DataFrame({"account_id": ["a"], "score": [20.0], "band": ["Poor"]})

    page = render_report(make_data(accounts))

    assert table_rows(parse_page(page), "at-risk") == [
        ["a", "20.0", "Poor", "–", "", "", "–"]
    ]


def test_render_report_all_unknown() -> None:
    accounts = make_accounts(
        [
            {"account_id": f"u{i}", "score": np.nan, "band": None, "arr": 100.0}
            for i in range(5)
        ]
    )

    page = render_report(make_data(accounts))
    tree = parse_page(page)

    assert kpi_value(page, "unknown") == "5"
    assert kpi_value(page, "scored") == "0"
    assert kpi_value(page, "average-score") == "–"
    assert kpi_value(page, "total-arr") == "500"
    assert table_rows(tree, "band-table")[-1] == ["Unknown", "5", "100.0%", "500"]
    assert "No scored accounts." in page
    assert "5 Unknown accounts are not shown" in page


def test_render_report_all_arr_missing(small_accounts: pd.DataFrame) -> None:
    accounts = small_accounts.assign(arr=np.nan)

    page = render_report(make_data(accounts))
    tree = parse_page(page)
    worst_tile = tree.find("div", **{"data-kpi": "worst-arr"})
    arr_card = tree.find("section", id="arr-at-risk-accounts")

    assert kpi_value(page, "total-arr") == "–"
    assert kpi_detail(page, "total-arr") == "no ARR data"
    assert kpi_value(page, "worst-arr") == "–"
    assert kpi_detail(page, "worst-arr") == "no ARR data"
    assert "alert" not in worst_tile.attrs["class"].split()
    assert arr_card.find("p", class_="empty").text() == (
        "No account carries ARR, so none can be ranked by ARR."
    )
    assert arr_card.find_all("table") == []
    assert arr_card.find_all("p", class_="caption") == []
    assert 'id="arr-at-risk"' not in page
    assert "– ARR" not in page
    assert "highest ARR" not in page
    assert "All 4 accounts in Poor, lowest score first." in page
    assert [row[3] for row in table_rows(tree, "band-table")] == ["–"] * 4
    assert [row[3] for row in table_rows(tree, "at-risk")] == ["–"] * 4


def test_render_report_worst_band_arr_missing(
    small_accounts: pd.DataFrame,
) -> None:
    poor = small_accounts["band"] == "Poor"
    accounts = small_accounts.assign(arr=small_accounts["arr"].mask(poor))

    page = render_report(make_data(accounts))
    arr_card = parse_page(page).find("section", id="arr-at-risk-accounts")

    assert kpi_value(page, "total-arr") == "32.0k"
    assert kpi_detail(page, "total-arr") == "4 accounts without ARR"
    assert kpi_value(page, "worst-arr") == "–"
    assert kpi_detail(page, "worst-arr") == "4 accounts, no ARR data"
    assert arr_card.find("p", class_="empty").text() == (
        "No ARR is recorded for the 4 accounts in Poor, so none can be ranked by ARR."
    )
    assert arr_card.find_all("table") == []
    assert "– ARR" not in page
    assert "lowest score first, then highest ARR" in page


def test_render_report_plural_captions(small_accounts: pd.DataFrame) -> None:
    page = render_report(make_data(small_accounts))
    captions = page_captions(page)

    assert kpi_detail(page, "total-arr") == "1 account without ARR"
    assert kpi_detail(page, "worst-arr") == "4 accounts, 62.8% of ARR"
    assert captions["score-distribution"] == (
        "6 scored accounts in 10-point bins, each bin coloured by its most common "
        "band. 1 Unknown account is not shown."
    )
    assert captions["at-risk-accounts"] == (
        "All 4 accounts in Poor, lowest score first, then highest ARR."
    )
    assert captions["arr-at-risk-accounts"] == (
        "4 accounts in Poor have 54,000 ARR in total. "
        "All are listed, largest ARR first."
    )


def test_render_report_singular_captions() -> None:
    accounts = make_accounts(
        [
            {"account_id": "p", "score": 20.0, "band": "Poor", "arr": 1000.0},
            {"account_id": "g", "score": 90.0, "band": "Good", "arr": np.nan},
            {"account_id": "u", "score": np.nan, "band": None, "arr": 500.0},
        ]
    )

    page = render_report(make_data(accounts))
    captions = page_captions(page)

    assert kpi_detail(page, "total-arr") == "1 account without ARR"
    assert kpi_detail(page, "worst-arr") == "1 account, 66.7% of ARR"
    assert captions["score-distribution"] == (
        "2 scored accounts in 10-point bins, each bin coloured by its most common "
        "band. 1 Unknown account is not shown."
    )
    assert captions["at-risk-accounts"] == "The only account in Poor."
    assert captions["arr-at-risk-accounts"] == (
        "1 account in Poor has 1,000 ARR in total."
    )


def test_render_report_single_scored_account() -> None:
    accounts = make_accounts(
        [{"account_id": "g", "score": 90.0, "band": "Good", "arr": np.nan}]
    )

    page = render_report(make_data(accounts))
    captions = page_captions(page)

    assert captions["score-distribution"] == (
        "1 scored account in 10-point bins, each bin coloured by its most common band."
    )
    assert captions["at-risk-accounts"] == (
        "No account is in Poor, so this is the only scored account."
    )
    assert "not shown" not in page


def test_render_report_caption_over_25_accounts() -> None:
    accounts = make_accounts(
        [
            {"account_id": f"p{i:02d}", "score": float(i), "band": "Poor", "arr": 10.0}
            for i in range(30)
        ]
    )

    captions = page_captions(render_report(make_data(accounts)))

    assert captions["at-risk-accounts"] == (
        "The 25 lowest-scoring of 30 accounts in Poor, lowest score first, "
        "then highest ARR."
    )
    assert captions["arr-at-risk-accounts"] == (
        "30 accounts in Poor have 300 ARR in total. The 25 largest by ARR are listed."
    )


@pytest.mark.parametrize("count", [1, 2])
def test_render_report_no_singular_plural_mixup(count: int) -> None:
    accounts = make_accounts(
        [
            {"account_id": f"{band}{i}", "score": score, "band": band, "arr": arr}
            for i in range(count)
            for band, score, arr in [
                ("Poor", 10.0, np.nan),
                ("Average", 50.0, 100.0),
                ("Good", 90.0, 100.0),
                (None, np.nan, 100.0),
            ]
        ]
    )

    text = parse_page(render_report(make_data(accounts))).text()

    # A count of one followed by a plural noun, such as "1 accounts".
    assert re.search(r"(?<![\d,.])1 (?:\w+ )?accounts\b", text) is None
    # A count above one followed by a singular noun, such as "2 account in".
    assert re.search(r"\b(?:[02-9]|\d{2,}) (?:\w+ )?account\b", text) is None
    assert f"{count * 3} scored account" in text


def test_render_report_nullable_dtypes(small_accounts: pd.DataFrame) -> None:
    accounts = small_accounts.astype(
        {"arr": "Float64", "score": "Float64", "churned": "boolean"}
    )

    page = render_report(make_data(accounts))

    assert kpi_value(page, "total-arr") == "86.0k"
    assert kpi_value(page, "unknown") == "1"


def test_render_report_header(small_accounts: pd.DataFrame) -> None:
    page = parse_page(render_report(make_data(small_accounts)))

    assert page.find("h1").text() == "Portfolio health"
    assert page.find("dd", id="as-of").text() == "2026-12-04"
    assert page.find("dd", id="profiles").text() == "saas-default 3f2a9c0d"


def test_render_report_header_several_profiles(
    small_accounts: pd.DataFrame,
) -> None:
    data = make_data(
        small_accounts,
        as_of=None,
        profile_names=("mature", "onboarding"),
        profile_hashes=("aaaaaaaaaaaa", "bbbbbbbbbbbb"),
    )

    page = parse_page(render_report(data))

    assert page.find("dd", id="as-of").text() == "several dates"
    assert page.find("dd", id="profiles").text() == (
        "mature aaaaaaaa, onboarding bbbbbbbb"
    )


def test_render_report_header_datetime64(small_accounts: pd.DataFrame) -> None:
    data = make_data(small_accounts, as_of=np.datetime64("2026-11-30"))

    page = parse_page(render_report(data))

    assert page.find("dd", id="as-of").text() == "2026-11-30"


def test_render_report_components(small_accounts: pd.DataFrame) -> None:
    page = parse_page(render_report(make_data(small_accounts)))

    chart = page.find("svg", id="component-chart")
    bars = chart.find_all("rect", class_="bar")
    texts = [text.text() for text in chart.find_all("text")]

    assert [bar.attrs["data-label"] for bar in bars] == ["engagement"]
    assert "61.5 · 5 acc." in texts
    assert "no data" in texts


def test_render_report_churn_section(small_accounts: pd.DataFrame) -> None:
    churn = pd.DataFrame(
        {
            "band": ["Poor", "Good", "Average"],
            "accounts": [4, 1, 1],
            "churned": [2, 0, 0],
            "churn_rate": [0.5, 0.0, 0.0],
        }
    )
    data = make_data(small_accounts, churn_by_band=churn, roc_auc=0.8125)

    page = render_report(data)
    chart = parse_page(page).find("svg", id="churn-chart")

    bars = chart.find_all("rect", class_="bar")
    assert [bar.attrs["data-label"] for bar in bars] == ["Good", "Average", "Poor"]
    assert bars[2].find("title").text() == "Poor: 50% · 2 of 4"
    assert "ROC AUC <strong>0.81</strong>" in page
    assert "In 81% of pairs of one churned and one retained account" in page


def test_render_report_auc_below_chance(small_accounts: pd.DataFrame) -> None:
    page = render_report(make_data(small_accounts, roc_auc=0.3))

    assert "ROC AUC <strong>0.30</strong>" in page
    assert "higher scores go with more churn" in page
    assert "No churn outcomes per band." in page


def test_render_report_omits_churn_without_outcomes(
    small_accounts: pd.DataFrame,
) -> None:
    page = render_report(make_data(small_accounts))

    assert 'id="churn"' not in page
    assert "ROC AUC" not in page


def test_render_report_extra_band_listed(small_accounts: pd.DataFrame) -> None:
    accounts = small_accounts.assign(band=small_accounts["band"].replace("Good", "VIP"))

    page = parse_page(render_report(make_data(accounts)))

    assert [row[0] for row in table_rows(page, "band-table")] == [
        "Good",
        "Average",
        "Poor",
        "VIP",
        "Unknown",
    ]


def test_render_report_rejects_missing_columns() -> None:
    accounts = pd.DataFrame({"account_id": ["a"], "band": ["Poor"]})

    with pytest.raises(InputDataError, match=r"missing columns \['score'\]"):
        render_report(make_data(accounts))


def test_render_report_rejects_text_scores() -> None:
    accounts = pd.DataFrame({"account_id": ["a"], "score": ["high"], "band": ["Poor"]})

    with pytest.raises(InputDataError, match="'score' must be numeric"):
        render_report(make_data(accounts))


def test_render_report_rejects_bad_components(small_accounts: pd.DataFrame) -> None:
    components = pd.DataFrame({"component": ["engagement"], "score": [50.0]})

    with pytest.raises(InputDataError, match="components frame is missing"):
        render_report(make_data(small_accounts, components=components))


def test_render_report_large_portfolio_stays_small() -> None:
    accounts = make_portfolio(100_000)
    churn = pd.DataFrame(
        {
            "band": [*BANDS, "Unknown"],
            "accounts": [30_000, 30_000, 35_000, 5_000],
            "churned": [900, 3_000, 8_000, 500],
            "churn_rate": [0.03, 0.1, 8_000 / 35_000, 0.1],
        }
    )

    page = render_report(make_data(accounts, churn_by_band=churn, roc_auc=0.74))
    tree = parse_page(page)

    assert len(page.encode("utf-8")) < 60_000
    assert len(table_rows(tree, "at-risk")) == 25
    assert kpi_value(page, "accounts") == "100,000"
    counts = accounts["band"].fillna("Unknown").value_counts()
    table_counts = {row[0]: row[1] for row in table_rows(tree, "band-table")}
    assert table_counts == {band: f"{counts[band]:,}" for band in [*BANDS, "Unknown"]}


def test_render_report_is_deterministic(small_accounts: pd.DataFrame) -> None:
    data = make_data(small_accounts)

    assert render_report(data) == render_report(data)


def test_write_report_creates_parents(tmp_path, small_accounts: pd.DataFrame) -> None:
    accounts = small_accounts.assign(name="Müller & Søn – café")
    data = make_data(accounts)
    target = tmp_path / "out" / "nested" / "report.html"

    written = write_report(data, str(target))

    assert written == target
    assert target.read_text(encoding="utf-8") == render_report(data)
    assert "Müller &amp; Søn – café".encode() in target.read_bytes()


def test_report_data_is_frozen(small_accounts: pd.DataFrame) -> None:
    data = make_data(small_accounts)

    with pytest.raises(AttributeError):
        data.title = "changed"  # type: ignore[misc]
    assert data.title == "Portfolio health"
