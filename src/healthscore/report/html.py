"""Assemble the self-contained HTML report.

The page loads nothing: the CSS is inline, the charts are inline SVG drawn by
:mod:`healthscore.report.charts`, and a Content-Security-Policy ``<meta>`` forbids
every fetch, so a browser opening the file from disk makes no request. Every value
from the input frames passes through :func:`html.escape`, because account names and
segments come from customer files.

The tables list the top 25 accounts only and the charts show aggregates, so the page
stays small for any number of accounts.
"""

from __future__ import annotations

import html
import logging
import math
from dataclasses import dataclass
from datetime import date
from itertools import zip_longest
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from healthscore import __version__
from healthscore.exceptions import InputDataError
from healthscore.report.charts import (
    Bar,
    histogram_chart,
    horizontal_bar_chart,
    vertical_bar_chart,
)

logger = logging.getLogger(__name__)

__all__ = ["ReportData", "render_report", "write_report"]

UNKNOWN_BAND = "Unknown"
TOP_N = 25
SCORE_BIN_EDGES = tuple(range(0, 101, 10))
SHORT_HASH_LENGTH = 8

ACCOUNT_COLUMNS = (
    "account_id",
    "name",
    "segment",
    "arr",
    "score",
    "band",
    "coverage",
    "weakest_component",
    "churned",
)
REQUIRED_ACCOUNT_COLUMNS = ("account_id", "score", "band")
COMPONENT_COLUMNS = ("component", "average_score", "accounts_with_data")
CHURN_COLUMNS = ("band", "accounts", "churned", "churn_rate")
NO_ARR_DATA = "no ARR data"

# Band colours run from green (best band) over amber to red (worst band).
GOOD_RGB = (47, 133, 90)
AVERAGE_RGB = (214, 140, 30)
POOR_RGB = (197, 48, 48)
UNKNOWN_COLOR = "#8a94a6"
NEUTRAL_COLOR = "#3b6ea8"

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"

CSS = """
:root {
  color-scheme: light;
  --text: #1f2933; --muted: #52606d; --line: #e4e7eb;
  --bg: #f5f7fa; --card: #ffffff; --alert: #b42318;
}
* { box-sizing: border-box; }
body {
  margin: 0; background: var(--bg); color: var(--text);
  font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue",
    Arial, "Noto Sans", "Liberation Sans", sans-serif;
}
.page { max-width: 1180px; margin: 0 auto; padding: 28px 20px 40px; }
.page-header {
  display: flex; flex-wrap: wrap; justify-content: space-between;
  align-items: flex-end; gap: 16px; padding-bottom: 18px;
  border-bottom: 1px solid var(--line); margin-bottom: 24px;
}
.eyebrow {
  margin: 0; font-size: 12px; font-weight: 600; color: var(--muted);
  text-transform: uppercase; letter-spacing: .08em;
}
h1 { margin: 4px 0 0; font-size: 28px; line-height: 1.2; }
h2 { margin: 0 0 4px; font-size: 18px; line-height: 1.3; }
.meta { display: flex; flex-wrap: wrap; gap: 8px 32px; margin: 0; }
.meta dt {
  font-size: 12px; color: var(--muted); text-transform: uppercase;
  letter-spacing: .06em;
}
.meta dd { margin: 0; font-weight: 600; }
code {
  font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, "Liberation Mono",
    monospace;
  font-size: 13px; font-weight: 400; background: #eef1f5;
  padding: 1px 5px; border-radius: 4px;
}
.kpis {
  display: grid; gap: 12px; margin-bottom: 16px;
  grid-template-columns: repeat(auto-fit, minmax(165px, 1fr));
}
.kpi {
  background: var(--card); border: 1px solid var(--line); border-radius: 8px;
  padding: 14px 16px;
}
.kpi .label { font-size: 13px; color: var(--muted); }
.kpi .value {
  font-size: 28px; font-weight: 650; line-height: 1.25;
  font-variant-numeric: tabular-nums;
}
.kpi .detail { font-size: 12px; color: var(--muted); }
.kpi.alert .value { color: var(--alert); }
.grid {
  display: grid; gap: 16px; margin-bottom: 16px;
  grid-template-columns: repeat(auto-fit, minmax(min(460px, 100%), 1fr));
}
.card {
  background: var(--card); border: 1px solid var(--line); border-radius: 8px;
  padding: 18px 20px; margin-bottom: 16px; min-width: 0;
}
.grid > .card { margin-bottom: 0; }
.caption { margin: 0 0 12px; font-size: 13px; color: var(--muted); }
.split {
  display: grid; gap: 12px 24px; align-items: center;
  grid-template-columns: repeat(auto-fit, minmax(min(260px, 100%), 1fr));
}
svg.chart { display: block; width: 100%; height: auto; max-width: 560px; }
svg.chart text { font-family: inherit; font-size: 12px; fill: var(--text); }
svg.chart text.tick, svg.chart text.axis { fill: var(--muted); }
svg.chart text.tick { font-size: 11px; }
.table-wrap { overflow-x: auto; }
table {
  width: 100%; border-collapse: collapse; font-size: 14px;
  font-variant-numeric: tabular-nums;
}
th, td {
  padding: 7px 10px; text-align: left; vertical-align: top;
  border-bottom: 1px solid var(--line);
}
th {
  font-size: 12px; font-weight: 600; color: var(--muted); background: #f9fafb;
  text-transform: uppercase; letter-spacing: .04em;
}
th.num, td.num { text-align: right; }
td.num, td.band { white-space: nowrap; }
tbody tr:nth-child(even) { background: #fafbfc; }
.account-id { display: block; font-size: 12px; color: var(--muted); }
.dot {
  display: inline-block; width: 10px; height: 10px; border-radius: 50%;
  margin-right: 6px;
}
.empty { color: var(--muted); font-style: italic; margin: 0; }
.auc { margin: 14px 0 0; }
.auc strong { font-size: 20px; }
.notes { margin: 0; padding-left: 20px; }
footer { margin-top: 24px; font-size: 12px; color: var(--muted); }
@media (max-width: 600px) {
  .page { padding: 18px 10px 28px; }
  .card { padding: 14px 12px; }
  th, td { padding: 6px 6px; }
  h1 { font-size: 24px; }
  .kpi .value { font-size: 24px; }
  #at-risk, #arr-at-risk { min-width: 680px; }
  #at-risk td:first-child, #arr-at-risk td:first-child { min-width: 10em; }
}
@media print {
  body { background: #fff; font-size: 12px; }
  .page { max-width: none; padding: 0; }
  .card, .kpi { border-color: #c8ccd2; break-inside: avoid; }
  .grid { grid-template-columns: 1fr 1fr; }
  .kpis { grid-template-columns: repeat(3, 1fr); }
  .split { grid-template-columns: 1fr; }
  .table-wrap { overflow: visible; }
  table { font-size: 11px; }
  thead { display: table-header-group; }
  tr { break-inside: avoid; }
  * { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
  @page { margin: 14mm; }
}
"""


@dataclass(frozen=True)
class ReportData:
    """Everything the HTML report shows, already computed.

    Parameters
    ----------
    title
        Portfolio name shown as the page heading, such as ``"Portfolio health"``.
    as_of
        Date the accounts were scored as of, or ``None`` when they were scored on
        several dates.
    profile_names, profile_hashes
        Health profiles used, and their content hashes in the same order.
    bands
        Band names from best to worst, such as ``("Good", "Average", "Poor")``. The
        last band is the one the report treats as at risk.
    accounts
        One row per account with columns ``account_id``, ``name`` (may be missing),
        ``segment``, ``arr`` (NaN when unknown), ``score`` (NaN means Unknown),
        ``band``, ``coverage`` (0-1), ``weakest_component`` and ``churned`` (bool, or
        None/NA when unknown). Only ``account_id``, ``score`` and ``band`` are
        required. The other columns are shown empty when they are missing.
    components
        One row per score component with ``component``, ``average_score`` (mean over
        accounts with data) and ``accounts_with_data``.
    churn_by_band
        One row per band with ``band``, ``accounts``, ``churned`` and ``churn_rate``
        (0-1), or ``None`` when no outcomes are known.
    roc_auc
        ROC AUC of ``100 - score`` against churn, or ``None`` when unknown.
    notes
        Free text lines shown at the bottom, such as data sources.
    """

    title: str
    as_of: date | None
    profile_names: tuple[str, ...]
    profile_hashes: tuple[str, ...]
    bands: tuple[str, ...]
    accounts: pd.DataFrame
    components: pd.DataFrame
    churn_by_band: pd.DataFrame | None
    roc_auc: float | None
    notes: tuple[str, ...] = ()


def render_report(data: ReportData) -> str:
    """Render the report as one self-contained HTML page.

    Parameters
    ----------
    data
        The portfolio, scores and outcomes to show.

    Returns
    -------
    str
        The HTML text, which references no external resource.

    Raises
    ------
    InputDataError
        If a frame lacks a required column or a numeric column contains text.

    Examples
    --------
    >>> import pandas as pd
    >>> accounts = pd.DataFrame(
    ...     {"account_id": ["a1"], "score": [42.0], "band": ["Poor"]}
    ... )
    >>> components = pd.DataFrame(
    ...     columns=["component", "average_score", "accounts_with_data"]
    ... )
    >>> data = ReportData(
    ...     "Portfolio health", None, ("default",), ("3f2a9c0d",),
    ...     ("Good", "Average", "Poor"), accounts, components, None, None,
    ... )
    >>> render_report(data).startswith("<!DOCTYPE html>")
    True
    """
    accounts = _prepare_accounts(data.accounts)
    band_order = _band_order(data.bands, accounts["band_label"])
    colors = _band_colors(data.bands)
    worst_band = data.bands[-1] if data.bands else None
    has_arr = bool(accounts["arr"].notna().any())

    kpis = _kpi_section(accounts, worst_band, has_arr)
    distribution = _band_section(accounts, band_order, colors)
    histogram = _histogram_section(accounts, colors)
    at_risk = _at_risk_section(accounts, worst_band, colors, has_arr)
    arr_at_risk = _arr_at_risk_section(accounts, worst_band, colors, has_arr)
    components = _components_section(data.components)
    churn = _churn_section(data.churn_by_band, data.roc_auc, band_order, colors)
    body = [
        _header(data),
        kpis,
        _grid(distribution, histogram),
        at_risk,
        arr_at_risk,
        _grid(components, churn),
        _notes_section(data.notes),
    ]

    page = _page(data.title, body)
    logger.debug(
        "Rendered report for %d accounts: %d characters", len(accounts), len(page)
    )
    return page


def write_report(data: ReportData, path: str | Path) -> Path:
    """Render the report and write it as a UTF-8 HTML file.

    Parameters
    ----------
    data
        The portfolio, scores and outcomes to show.
    path
        File to write. Missing parent directories are created, and an existing file
        is replaced.

    Returns
    -------
    Path
        The path written.

    Raises
    ------
    InputDataError
        If a frame lacks a required column or a numeric column contains text.
    """
    target = Path(path)
    page = render_report(data)

    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(page, encoding="utf-8")
    logger.info("Wrote report for %d accounts to %s", len(data.accounts), target)
    return target


def _prepare_accounts(accounts: pd.DataFrame) -> pd.DataFrame:
    missing = [c for c in REQUIRED_ACCOUNT_COLUMNS if c not in accounts.columns]
    if missing:
        raise InputDataError(
            f"accounts frame is missing columns {missing!r}; expected at least "
            f"{list(REQUIRED_ACCOUNT_COLUMNS)!r}. Add them to ReportData.accounts."
        )

    frame = pd.DataFrame(index=pd.RangeIndex(len(accounts)))
    for column in ACCOUNT_COLUMNS:
        values = accounts[column] if column in accounts.columns else None
        frame[column] = None if values is None else values.to_numpy(dtype=object)
    for column in ("score", "arr", "coverage"):
        frame[column] = _to_float(frame[column], column)

    scored = frame["score"].notna() & frame["band"].notna()
    labels = frame["band"].map(_text, na_action="ignore")
    frame["band_label"] = labels.where(scored, UNKNOWN_BAND).astype(object)
    return frame


def _to_float(values: pd.Series, column: str) -> pd.Series:
    try:
        numbers = pd.to_numeric(values, errors="raise")
    except (TypeError, ValueError) as exc:
        raise InputDataError(
            f"accounts column {column!r} must be numeric, with NaN or None for a "
            f"missing value; it contains non-numeric values ({exc}). "
            f"Convert the column to numbers before building the report."
        ) from exc
    return pd.Series(numbers.to_numpy(dtype="float64", na_value=np.nan))


def _band_order(bands: tuple[str, ...], labels: pd.Series) -> list[str]:
    extra = sorted(set(labels) - set(bands) - {UNKNOWN_BAND})
    if extra:
        logger.warning("Accounts have bands %r that the profile does not list", extra)
    return [*bands, *extra, UNKNOWN_BAND]


def _band_colors(bands: tuple[str, ...]) -> dict[str, str]:
    colors = {UNKNOWN_BAND: UNKNOWN_COLOR}
    if len(bands) == 1:
        colors[bands[0]] = _hex(GOOD_RGB)
    for index, band in enumerate(bands if len(bands) > 1 else ()):
        position = index / (len(bands) - 1)
        colors[band] = _hex(_interpolate(position))
    return colors


def _interpolate(position: float) -> tuple[float, float, float]:
    if position <= 0.5:
        start, end, t = GOOD_RGB, AVERAGE_RGB, position * 2
    else:
        start, end, t = AVERAGE_RGB, POOR_RGB, position * 2 - 1
    red, green, blue = (a + (b - a) * t for a, b in zip(start, end, strict=True))
    return red, green, blue


def _hex(rgb: tuple[float, float, float]) -> str:
    red, green, blue = (round(channel) for channel in rgb)
    return f"#{red:02x}{green:02x}{blue:02x}"


def _header(data: ReportData) -> str:
    as_of = "several dates"
    if data.as_of is not None:
        # A Timestamp or numpy datetime64 from a frame is accepted as well as a date.
        day = pd.Timestamp(data.as_of).date().isoformat()
        as_of = f'<time datetime="{day}">{day}</time>'
    profiles = [
        f"{_esc(name)} <code>{_esc(hash_[:SHORT_HASH_LENGTH])}</code>"
        if hash_
        else _esc(name)
        for name, hash_ in zip_longest(
            data.profile_names, data.profile_hashes, fillvalue=""
        )
    ]
    profile_label = "Profile" if len(profiles) == 1 else "Profiles"
    return (
        '<header class="page-header">\n'
        '<div><p class="eyebrow">Customer health report</p>'
        f"<h1>{_esc(data.title)}</h1></div>\n"
        '<dl class="meta">'
        f'<div><dt>As of</dt><dd id="as-of">{as_of}</dd></div>'
        f"<div><dt>{profile_label}</dt>"
        f'<dd id="profiles">{", ".join(profiles) or "none"}</dd></div>'
        "</dl>\n</header>"
    )


def _kpi_section(accounts: pd.DataFrame, worst_band: str | None, has_arr: bool) -> str:
    total = len(accounts)
    scored = int(accounts["score"].notna().sum())
    arr = accounts["arr"]
    total_arr = arr.sum(min_count=1)
    missing_arr = int(arr.isna().sum())
    worst = accounts[accounts["band_label"] == worst_band] if worst_band else None
    average = accounts["score"].mean()

    arr_detail = "all accounts"
    if not has_arr:
        arr_detail = NO_ARR_DATA
    elif missing_arr:
        arr_detail = f"{_count(missing_arr, 'account')} without ARR"
    tiles = [
        _tile("accounts", "Accounts", f"{total:,}", "in this report"),
        _tile(
            "scored", "Scored", f"{scored:,}", f"{_share(scored, total)} of accounts"
        ),
        _tile("unknown", "Unknown", f"{total - scored:,}", "too little data to score"),
        _tile("total-arr", "Total ARR", _compact(total_arr), arr_detail),
        _worst_arr_tile(worst, worst_band, total_arr, has_arr),
        _tile(
            "average-score",
            "Average score",
            "–" if math.isnan(average) else f"{average:.1f}",
            "out of 100, scored accounts only",
        ),
    ]
    return (
        '<section class="kpis" aria-label="Key figures">\n'
        + "\n".join(tiles)
        + ("\n</section>")
    )


def _worst_arr_tile(
    worst: pd.DataFrame | None,
    worst_band: str | None,
    total_arr: float,
    has_arr: bool,
) -> str:
    if worst is None or worst_band is None:
        return _tile("worst-arr", "ARR at risk", "–", "the profile lists no bands")

    label = f"ARR in {worst_band}"
    if not has_arr:
        return _tile("worst-arr", label, "–", NO_ARR_DATA)

    worst_arr = worst["arr"].sum(min_count=1)
    detail = _count(len(worst), "account")
    if len(worst) and math.isnan(worst_arr):
        detail += f", {NO_ARR_DATA}"
    elif len(worst):
        detail += f", {_share(worst_arr, total_arr)} of ARR"
    alert = not math.isnan(worst_arr)
    return _tile("worst-arr", label, _compact(worst_arr), detail, alert=alert)


def _tile(key: str, label: str, value: str, detail: str, *, alert: bool = False) -> str:
    css_class = "kpi alert" if alert else "kpi"
    return (
        f'<div class="{css_class}" data-kpi="{key}">'
        f'<div class="label">{_esc(label)}</div>'
        f'<div class="value">{_esc(value)}</div>'
        f'<div class="detail">{_esc(detail)}</div></div>'
    )


def _band_section(
    accounts: pd.DataFrame, band_order: list[str], colors: dict[str, str]
) -> str:
    total = len(accounts)
    counts = accounts["band_label"].value_counts()
    arr_sums = accounts.groupby("band_label")["arr"].sum(min_count=1)

    bars, rows = [], []
    for band in band_order:
        count = int(counts.get(band, 0))
        color = colors.get(band, UNKNOWN_COLOR)
        bars.append(Bar(band, count, f"{count:,} · {_share(count, total)}", color))
        rows.append(
            [
                _band_cell(band, colors),
                _num_cell(f"{count:,}"),
                _num_cell(_share(count, total)),
                _num_cell(_money(arr_sums.get(band, math.nan))),
            ]
        )

    chart = vertical_bar_chart(
        bars,
        title="Accounts per band",
        y_label="Accounts",
        chart_id="band-chart",
        tick_format=lambda value: f"{value:,.0f}",
        integer_ticks=True,
    )
    table = _table("band-table", ["Band", "Accounts", "Share", "ARR"], [1, 2, 3], rows)
    return _card(
        "band-distribution",
        "Band distribution",
        "Accounts per band. Unknown accounts have too little data to score.",
        f'<div class="split"><div>{chart}</div><div>{table}</div></div>',
    )


def _histogram_section(accounts: pd.DataFrame, colors: dict[str, str]) -> str:
    scored = accounts[accounts["score"].notna()]
    scores = scored["score"].to_numpy()
    outside = int(((scores < 0) | (scores > 100)).sum())
    if outside:
        logger.warning("%d scores lie outside 0-100; the histogram clips them", outside)

    # Bins are [0, 10), [10, 20) ... [90, 100], as numpy.histogram draws them.
    bin_count = len(SCORE_BIN_EDGES) - 1
    bins = np.minimum(np.clip(scores, 0, 100) // 10, bin_count - 1).astype(int)
    counts = np.bincount(bins, minlength=bin_count)
    by_band = pd.crosstab(bins, scored["band_label"].to_numpy())
    dominant = by_band.idxmax(axis=1).to_dict() if len(by_band) else {}
    bin_colors = [
        colors.get(str(dominant[i]), NEUTRAL_COLOR) if i in dominant else NEUTRAL_COLOR
        for i in range(bin_count)
    ]

    chart = histogram_chart(
        [int(count) for count in counts],
        [float(edge) for edge in SCORE_BIN_EDGES],
        title="Accounts per 10-point score bin",
        x_label="Health score",
        y_label="Accounts",
        chart_id="score-histogram",
        colors=bin_colors,
    )
    unknown = len(accounts) - len(scores)
    caption = (
        f"{_count(len(scores), 'scored account')} in 10-point bins, each bin "
        "coloured by its most common band."
    )
    if unknown:
        verb = _agree(unknown, "is", "are")
        caption += f" {_count(unknown, 'Unknown account')} {verb} not shown."
    return _card("score-distribution", "Score distribution", caption, chart)


def _at_risk_section(
    accounts: pd.DataFrame,
    worst_band: str | None,
    colors: dict[str, str],
    has_arr: bool,
) -> str:
    scored = accounts[accounts["score"].notna()]
    worst = scored[scored["band_label"] == worst_band]
    candidates = worst if len(worst) else scored
    top = candidates.sort_values(
        ["score", "arr"], ascending=[True, False], na_position="last", kind="stable"
    ).head(TOP_N)

    order = "lowest score first, then highest ARR" if has_arr else "lowest score first"
    if len(worst):
        caption = _worst_accounts_caption(len(top), len(worst), worst_band, order)
    else:
        caption = _lowest_accounts_caption(len(top), len(scored), worst_band, order)

    headers = [
        "Account",
        "Score",
        "Band",
        "ARR",
        "Weakest component",
        "Segment",
        "Coverage",
    ]
    rows = [
        [
            _account_cell(row),
            _num_cell(_score(row.score)),
            _band_cell(row.band_label, colors),
            _num_cell(_money(row.arr)),
            _cell(_text(row.weakest_component)),
            _cell(_text(row.segment)),
            _num_cell(_share(row.coverage, 1.0)),
        ]
        for row in _records(top)
    ]
    content = _table("at-risk", headers, [1, 3, 6], rows, empty="No scored accounts.")
    return _card("at-risk-accounts", "At-risk accounts", caption, content)


def _worst_accounts_caption(
    listed: int, in_band: int, worst_band: str | None, order: str
) -> str:
    if in_band == 1:
        return f"The only account in {worst_band}."
    if listed == in_band:
        return f"All {in_band:,} accounts in {worst_band}, {order}."
    return (
        f"The {listed:,} lowest-scoring of {in_band:,} accounts in {worst_band}, "
        f"{order}."
    )


def _lowest_accounts_caption(
    listed: int, scored: int, worst_band: str | None, order: str
) -> str:
    reason = f"No account is in {worst_band or 'the worst band'}"
    if listed == 0:
        return f"{reason}."
    if scored == 1:
        return f"{reason}, so this is the only scored account."
    if listed == scored:
        return f"{reason}, so these are all {scored:,} scored accounts, {order}."
    return f"{reason}, so these are the {listed:,} lowest-scoring accounts overall."


def _arr_at_risk_section(
    accounts: pd.DataFrame,
    worst_band: str | None,
    colors: dict[str, str],
    has_arr: bool,
) -> str:
    section_id, title = "arr-at-risk-accounts", "ARR at risk"
    scored = accounts[accounts["score"].notna()]
    worst = scored[scored["band_label"] == worst_band]
    if not len(worst):
        sentence = f"No account is in {worst_band or 'the worst band'}."
        return _card(section_id, title, "", _empty(sentence))

    # Without any known ARR a ranking by ARR would only repeat the at-risk table.
    if not has_arr:
        sentence = "No account carries ARR, so none can be ranked by ARR."
        return _card(section_id, title, "", _empty(sentence))

    worst_arr = worst["arr"].sum(min_count=1)
    if math.isnan(worst_arr):
        sentence = (
            f"No ARR is recorded for the {_count(len(worst), 'account')} in "
            f"{worst_band}, so none can be ranked by ARR."
        )
        return _card(section_id, title, "", _empty(sentence))

    top = worst.sort_values(
        ["arr", "score"], ascending=[False, True], na_position="last", kind="stable"
    ).head(TOP_N)
    caption = _arr_at_risk_caption(len(top), len(worst), worst_band, worst_arr)
    headers = ["Account", "ARR", "Score", "Band", "Weakest component", "Segment"]
    rows = [
        [
            _account_cell(row),
            _num_cell(_money(row.arr)),
            _num_cell(_score(row.score)),
            _band_cell(row.band_label, colors),
            _cell(_text(row.weakest_component)),
            _cell(_text(row.segment)),
        ]
        for row in _records(top)
    ]
    content = _table("arr-at-risk", headers, [1, 2], rows)
    return _card(section_id, title, caption, content)


def _arr_at_risk_caption(
    listed: int, in_band: int, worst_band: str | None, worst_arr: float
) -> str:
    accounts = _count(in_band, "account")
    verb = _agree(in_band, "has", "have")
    total = f"{accounts} in {worst_band} {verb} {_money(worst_arr)} ARR in total."
    if in_band == 1:
        return total
    if listed == in_band:
        return f"{total} All are listed, largest ARR first."
    return f"{total} The {listed:,} largest by ARR are listed."


def _components_section(components: pd.DataFrame | None) -> str:
    title = "Component averages"
    caption = "Average component score over the accounts that have data for it."
    if components is None or components.empty:
        return _card("components", title, caption, _empty("No component scores."))
    _require_columns(components, COMPONENT_COLUMNS, "components")

    bars = []
    for row in components.itertuples(index=False):
        average = _float(row.average_score)
        with_data = _float(row.accounts_with_data)
        accounts = "–" if math.isnan(with_data) else f"{with_data:,.0f}"
        text = "no data" if math.isnan(average) else f"{average:.1f} · {accounts} acc."
        bars.append(Bar(_text(row.component), average, text, NEUTRAL_COLOR))

    chart = horizontal_bar_chart(
        bars,
        title="Average score per component",
        x_label="Average component score (0-100)",
        chart_id="component-chart",
        x_max=100,
    )
    return _card("components", title, caption, chart)


def _churn_section(
    churn_by_band: pd.DataFrame | None,
    roc_auc: float | None,
    band_order: list[str],
    colors: dict[str, str],
) -> str:
    if churn_by_band is None and roc_auc is None:
        return ""

    parts = []
    if churn_by_band is not None and not churn_by_band.empty:
        _require_columns(churn_by_band, CHURN_COLUMNS, "churn_by_band")
        parts.append(_churn_chart(churn_by_band, band_order, colors))
    else:
        parts.append(_empty("No churn outcomes per band."))
    parts.append(_auc_paragraph(roc_auc))

    caption = "Share of accounts in each band that churned, with the number churned."
    return _card("churn", "Churn by band", caption, "\n".join(parts))


def _churn_chart(
    churn_by_band: pd.DataFrame, band_order: list[str], colors: dict[str, str]
) -> str:
    position = {band: index for index, band in enumerate(band_order)}
    rows = sorted(
        churn_by_band.itertuples(index=False),
        key=lambda row: position.get(_text(row.band), len(position)),
    )

    bars = []
    for row in rows:
        band = _text(row.band)
        accounts, churned = _float(row.accounts), _float(row.churned)
        rate = _float(row.churn_rate) * 100
        text = (
            "no accounts"
            if math.isnan(rate)
            else f"{rate:.0f}% · {churned:,.0f} of {accounts:,.0f}"
        )
        bars.append(Bar(band, rate, text, colors.get(band, UNKNOWN_COLOR)))

    return vertical_bar_chart(
        bars,
        title="Churn rate per band",
        y_label="Churn rate (%)",
        chart_id="churn-chart",
        tick_format=lambda value: f"{value:g}%",
    )


def _auc_paragraph(roc_auc: float | None) -> str:
    if roc_auc is None or math.isnan(roc_auc):
        return '<p class="auc" id="roc-auc">ROC AUC: not available.</p>'

    sentence = (
        f"In {roc_auc:.0%} of pairs of one churned and one retained account, the "
        "churned account had the lower health score (ties count as half), where "
        "50% is no better than chance and 100% is a perfect ranking."
    )
    if roc_auc < 0.5:
        sentence += " Below 50%, higher scores go with more churn: review the profile."
    return (
        f'<p class="auc" id="roc-auc">ROC AUC <strong>{roc_auc:.2f}</strong></p>'
        f'<p class="caption">{_esc(sentence)}</p>'
    )


def _notes_section(notes: tuple[str, ...]) -> str:
    if not notes:
        return ""
    items = "\n".join(f"<li>{_esc(note)}</li>" for note in notes)
    return _card("notes", "Notes", "", f'<ul class="notes">\n{items}\n</ul>')


def _page(title: str, body: list[str]) -> str:
    content = "\n".join(part for part in body if part)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f'<meta name="generator" content="healthscore {_esc(__version__)}">\n'
        f"<title>{_esc(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
        f'<div class="page">\n{content}\n'
        f"<footer>Generated by healthscore {_esc(__version__)}.</footer>\n"
        "</div>\n</body>\n</html>\n"
    )


def _grid(*cards: str) -> str:
    content = "\n".join(card for card in cards if card)
    return f'<div class="grid">\n{content}\n</div>'


def _card(section_id: str, title: str, caption: str, content: str) -> str:
    caption_html = f'<p class="caption">{_esc(caption)}</p>\n' if caption else ""
    return (
        f'<section class="card" id="{section_id}">\n<h2>{_esc(title)}</h2>\n'
        f"{caption_html}{content}\n</section>"
    )


def _table(
    table_id: str,
    headers: list[str],
    numeric: list[int],
    rows: list[list[str]],
    *,
    empty: str = "No rows.",
) -> str:
    if not rows:
        return _empty(empty)
    head = "".join(
        f'<th scope="col"{_num_class(i, numeric)}>{_esc(h)}</th>'
        for i, h in enumerate(headers)
    )
    body = "\n".join("<tr>" + "".join(cells) + "</tr>" for cells in rows)
    return (
        f'<div class="table-wrap"><table id="{table_id}">\n'
        f"<thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n</tbody>\n</table></div>"
    )


def _num_class(index: int, numeric: list[int]) -> str:
    return ' class="num"' if index in numeric else ""


def _cell(text: str) -> str:
    return f"<td>{_esc(text)}</td>"


def _num_cell(text: str) -> str:
    return f'<td class="num">{_esc(text)}</td>'


def _records(frame: pd.DataFrame) -> list[Any]:
    # Typed as Any because pandas stubs type each tuple field as any scalar.
    return list(frame.itertuples(index=False))


def _account_cell(row: Any) -> str:
    account_id = _text(row.account_id)
    name = _text(row.name)
    if not name:
        return f'<td data-account-id="{_esc(account_id)}">{_esc(account_id)}</td>'
    return (
        f'<td data-account-id="{_esc(account_id)}">{_esc(name)}'
        f'<span class="account-id">{_esc(account_id)}</span></td>'
    )


def _band_cell(band: str, colors: dict[str, str]) -> str:
    color = colors.get(band, UNKNOWN_COLOR)
    return (
        f'<td class="band"><span class="dot" style="background:{_esc(color)}"></span>'
        f"{_esc(band)}</td>"
    )


def _empty(message: str) -> str:
    return f'<p class="empty">{_esc(message)}</p>'


def _require_columns(frame: pd.DataFrame, columns: tuple[str, ...], name: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InputDataError(
            f"{name} frame is missing columns {missing!r}; expected "
            f"{list(columns)!r}. Add them to ReportData.{name}."
        )


def _float(value: object) -> float:
    if value is None or value is pd.NA:
        return math.nan
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        raise InputDataError(
            f"expected a number, got {value!r}. Pass numbers, or NaN for a missing "
            "value, in the report frames."
        ) from exc


def _text(value: object) -> str:
    if value is None or value is pd.NA:
        return ""
    if isinstance(value, float) and math.isnan(value):
        return ""
    return str(value)


def _score(value: float) -> str:
    return "–" if math.isnan(value) else f"{value:.1f}"


def _money(value: float) -> str:
    return "–" if math.isnan(value) else f"{value:,.0f}"


def _compact(value: float) -> str:
    if math.isnan(value):
        return "–"
    for limit, divisor, suffix in ((999_950_000, 1e9, "B"), (999_950, 1e6, "M")):
        if abs(value) >= limit:
            return f"{value / divisor:,.1f}{suffix}"
    if abs(value) >= 10_000:
        return f"{value / 1e3:,.1f}k"
    return f"{value:,.0f}"


def _share(part: float, whole: float) -> str:
    if math.isnan(part) or math.isnan(whole) or whole == 0:
        return "–"
    return f"{part / whole:.1%}"


def _count(number: int, noun: str) -> str:
    # Every noun the page counts forms its plural with a trailing "s".
    return f"{number:,} {noun if number == 1 else noun + 's'}"


def _agree(number: int, singular: str, plural: str) -> str:
    return singular if number == 1 else plural


def _esc(value: object) -> str:
    return html.escape(_text(value), quote=True)
