"""Write a validation result as a self-contained HTML page and a JSON file.

The page uses the look of the portfolio report: its CSS, Content-Security-Policy,
cards, tables and SVG charts come from :mod:`healthscore.report`, so it loads
nothing and escapes every value.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from healthscore.report.charts import Bar, vertical_bar_chart
from healthscore.report.html import (
    NEUTRAL_COLOR,
    UNKNOWN_COLOR,
    _band_cell,
    _band_colors,
    _card,
    _cell,
    _empty,
    _esc,
    _grid,
    _num_cell,
    _page,
    _table,
    _tile,
)

__all__ = [
    "METRIC_LABELS",
    "render_validation_html",
    "write_validation_json",
    "write_validation_report",
]

logger = logging.getLogger(__name__)

HTML_NAME = "validation.html"
JSON_NAME = "validation.json"

#: Row label, decimals and meaning of each metric in the comparison table.
METRIC_LABELS: dict[str, tuple[str, int, str]] = {
    "roc_auc": (
        "ROC AUC",
        3,
        "Chance that a churned account has a lower score than a retained one; "
        "0.5 is chance.",
    ),
    "pr_auc": (
        "PR AUC",
        3,
        "Average precision of ranking by score; the churn rate is chance.",
    ),
    "top_decile_lift": (
        "Top-decile lift",
        2,
        "Churn rate of the 10% lowest scores over the overall rate; 1 is chance.",
    ),
    "brier_score": (
        "Brier score",
        3,
        "Mean squared gap between calibrated probability and outcome; lower is better.",
    ),
    "expected_calibration_error": (
        "Expected calibration error",
        3,
        "Gap between calibrated probability and churn rate over 10 bins; lower is "
        "better.",
    ),
}


def write_validation_report(
    document: dict[str, Any], out_dir: str | Path
) -> tuple[Path, Path]:
    """Write ``validation.html`` and ``validation.json`` into ``out_dir``.

    Parameters
    ----------
    document
        The result of :func:`healthscore.predict.validation.validate_profiles`.
    out_dir
        Folder to write to; created if missing. Existing files are replaced.

    Returns
    -------
    tuple of Path
        The HTML and the JSON path.
    """
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    json_path = write_validation_json(document, folder / JSON_NAME)
    html_path = folder / HTML_NAME
    html_path.write_text(render_validation_html(document), encoding="utf-8")
    logger.info("Wrote the validation page to %s", html_path)
    return html_path, json_path


def write_validation_json(document: dict[str, Any], path: str | Path) -> Path:
    """Write the validation result as indented JSON, with null for a missing value."""
    target = Path(path)
    text = json.dumps(document, indent=2, allow_nan=False, ensure_ascii=False)
    target.write_text(text + "\n", encoding="utf-8")
    return target


def render_validation_html(document: dict[str, Any]) -> str:
    """Render the validation result as one self-contained HTML page.

    Parameters
    ----------
    document
        The result of :func:`healthscore.predict.validation.validate_profiles`.

    Returns
    -------
    str
        The HTML text, which references no external resource.
    """
    results = document["profiles"]
    body = [
        _header(document),
        _headline(results),
        _split_section(results),
        _metrics_section(results, document["bootstrap"]),
        _grid(*(_band_section(r, i) for i, r in enumerate(results, start=1))),
        _lead_section(results),
        _calibration_section(results),
        _method_section(document, results),
    ]
    return _page("Profile validation", body)


def _header(document: dict[str, Any]) -> str:
    names = ", ".join(
        _esc(result["profile"]["name"]) for result in document["profiles"]
    )
    settings = document["bootstrap"]
    bootstrap = (
        f"{settings['resamples']:,} resamples, {settings['level']:.0%} interval, "
        f"seed {settings['seed']}"
    )
    return (
        '<header class="page-header">\n'
        '<div><p class="eyebrow">Checked against real churn</p>'
        "<h1>Profile validation</h1></div>\n"
        '<dl class="meta">'
        f'<div><dt>As of</dt><dd id="as-of">{_esc(document["as_of"])}</dd></div>'
        f'<div><dt>Profiles</dt><dd id="profiles">{names or "none"}</dd></div>'
        f'<div><dt>Bootstrap</dt><dd id="bootstrap">{_esc(bootstrap)}</dd></div>'
        "</dl>\n</header>"
    )


def _interval_text(entry: dict[str, Any], digits: int) -> str:
    if entry.get("estimate") is None:
        return "n/a"
    text = f"{entry['estimate']:.{digits}f}"
    if entry.get("low") is None:
        return text
    return f"{text} ({entry['low']:.{digits}f}–{entry['high']:.{digits}f})"


def _headline(results: Sequence[dict[str, Any]]) -> str:
    tiles = []
    for index, result in enumerate(results):
        entry = result["metrics"]["roc_auc"]
        value = "n/a" if entry["estimate"] is None else f"{entry['estimate']:.3f}"
        detail = "not defined" if entry["estimate"] is None else "ROC AUC"
        if entry.get("low") is not None:
            detail = f"ROC AUC, 95% CI {entry['low']:.3f}–{entry['high']:.3f}"
        tiles.append(_tile(f"auc-{index}", result["profile"]["name"], value, detail))
    return (
        '<section class="kpis" aria-label="ROC AUC per profile">\n'
        + "\n".join(tiles)
        + "\n</section>"
    )


def _split_section(results: Sequence[dict[str, Any]]) -> str:
    split = results[0]["split"] if results else None
    if split is None:
        return _card("split", "Split", "", _empty("No profile was checked."))
    kind = "Time-based hold-out" if split["kind"] == "time-holdout" else "All accounts"
    headers = ["Profile", "Accounts", "Scored", "Unknown", "Churned", "Churn rate"]
    rows = []
    for result in results:
        counts = result["accounts"]
        rate = counts["churn_rate"]
        rows.append(
            [
                _cell(result["profile"]["name"]),
                _num_cell(f"{counts['evaluated']:,}"),
                _num_cell(f"{counts['scored']:,}"),
                _num_cell(f"{counts['unknown']:,}"),
                _num_cell(f"{counts['churned']:,}"),
                _num_cell("–" if rate is None else f"{rate:.1%}"),
            ]
        )
    content = (
        f'<p id="split-kind">{_split_text(kind, split["description"])}</p>\n'
        + _table("split-table", headers, [1, 2, 3, 4, 5], rows)
    )
    warnings = [text for result in results for text in result.get("warnings", [])]
    if warnings:
        items = "\n".join(f"<li>{_esc(text)}</li>" for text in warnings)
        content += f'\n<ul class="notes" id="split-warnings">\n{items}\n</ul>'
    caption = (
        "Metrics use the scored accounts; Unknown accounts have too little data "
        "to score and appear only in the churn per band."
    )
    return _card("split", "Which accounts were checked", caption, content)


def _split_text(kind: str, description: str) -> str:
    """Return the split's description with its kind in bold, named once."""
    if description.lower().startswith(kind.lower()):
        rest = description[len(kind) :]
        return f"<strong>{_esc(description[: len(kind)])}</strong>{_esc(rest)}"
    return f"<strong>{_esc(kind)}.</strong> {_esc(description)}"


def _metrics_section(
    results: Sequence[dict[str, Any]], bootstrap: dict[str, Any]
) -> str:
    headers = ["Metric", *(r["profile"]["name"] for r in results), "Meaning"]
    rows = []
    for key, (label, digits, meaning) in METRIC_LABELS.items():
        cells = [f'<td data-metric="{_esc(key)}">{_esc(label)}</td>']
        for result in results:
            entry = result["metrics"][key]
            cell = _num_cell(_interval_text(entry, digits))
            if entry.get("reason"):
                cell = cell.replace("<td ", f'<td title="{_esc(entry["reason"])}" ', 1)
            cells.append(cell)
        cells.append(_cell(meaning))
        rows.append(cells)
    numeric = list(range(1, len(results) + 1))
    caption = (
        f"Estimate with its {bootstrap['level']:.0%} percentile bootstrap interval in "
        f"parentheses, from {bootstrap['resamples']:,} resamples of the accounts. Risk "
        "is 100 minus the score."
    )
    content = _table("metrics", headers, numeric, rows)
    reasons = [
        f"{result['profile']['name']}: no figures, because {result['reason']}"
        for result in results
        if result.get("reason")
    ]
    if reasons:
        items = "\n".join(f"<li>{_esc(reason)}</li>" for reason in reasons)
        content += f'\n<ul class="notes" id="metrics-notes">\n{items}\n</ul>'
    return _card("metrics-card", "Metrics side by side", caption, content)


def _band_section(result: dict[str, Any], number: int) -> str:
    name = result["profile"]["name"]
    rows_in = result["churn_by_band"]
    bands = tuple(row["band"] for row in rows_in if row["band"] != "Unknown")
    colors = _band_colors(bands)

    bars, rows = [], []
    for row in rows_in:
        entry = row["churn_rate"]
        rate = entry["estimate"]
        color = colors.get(row["band"], UNKNOWN_COLOR)
        text = "no accounts" if rate is None else f"{rate:.0%} · {row['churned']:,}"
        bars.append(
            Bar(row["band"], float("nan") if rate is None else rate * 100, text, color)
        )
        rows.append(
            [
                _band_cell(row["band"], colors),
                _num_cell(f"{row['accounts']:,}"),
                _num_cell(f"{row['churned']:,}"),
                _num_cell(_percent_interval(entry)),
            ]
        )
    chart = vertical_bar_chart(
        bars,
        title=f"Churn rate per band, {name}",
        y_label="Churn rate (%)",
        chart_id=f"churn-chart-{number}",
        tick_format=lambda value: f"{value:g}%",
    )
    table = _table(
        f"churn-table-{number}",
        ["Band", "Accounts", "Churned", "Churn rate (95% CI)"],
        [1, 2, 3],
        rows,
    )
    caption = "A useful profile has churn rising from the best band to the worst."
    return _card(f"bands-{number}", f"Churn per band: {name}", caption, chart + table)


def _percent_interval(entry: dict[str, Any]) -> str:
    if entry.get("estimate") is None:
        return "–"
    text = f"{entry['estimate']:.1%}"
    if entry.get("low") is None:
        return text
    return f"{text} ({entry['low']:.1%}–{entry['high']:.1%})"


def _lead_section(results: Sequence[dict[str, Any]]) -> str:
    headers = [
        "Profile",
        "Churned with history",
        "Warned before churn",
        "Median lead (days)",
        "Middle half (days)",
    ]
    rows = []
    notes = []
    for result in results:
        lead = result["lead_time"]
        name = result["profile"]["name"]
        if not lead["available"]:
            notes.append(f"{name}: not available, because {lead['reason']}.")
            continue
        quartiles = lead["quartile_days"]
        middle = "–" if quartiles is None else f"{quartiles[0]:.0f}–{quartiles[1]:.0f}"
        warned = lead["share_warned"]
        rows.append(
            [
                _cell(name),
                _num_cell(f"{lead['churned_with_history']:,}"),
                _num_cell(f"{lead['warned']:,} · {_percent_interval(warned)}"),
                _num_cell(_interval_text(lead["median_days"], 0)),
                _num_cell(middle),
            ]
        )
    content = _table("lead-time", headers, [1, 2, 3, 4], rows, empty="") if rows else ""
    if notes:
        items = "\n".join(f"<li>{_esc(note)}</li>" for note in notes)
        content += f'\n<ul class="notes" id="lead-time-notes">\n{items}\n</ul>'
    caption = (
        "Days from an account's first score in the worst band to its churn date, "
        "over churned accounts with a stored score before churning. Warned is the "
        "share of them that reached the worst band before churning."
    )
    return _card("lead-time-card", "Lead time", caption, content)


def _calibration_section(results: Sequence[dict[str, Any]]) -> str:
    cards = [_calibration_card(r, i) for i, r in enumerate(results, start=1)]
    return _grid(*cards)


def _calibration_card(result: dict[str, Any], number: int) -> str:
    name = result["profile"]["name"]
    bins = [row for row in result["calibration"] if row["accounts"] > 0]
    if not bins:
        reason = result["metrics"]["brier_score"].get("reason") or "no probabilities"
        content = _empty(f"Calibration not available: {reason}")
        return _card(f"calibration-{number}", f"Calibration: {name}", "", content)

    # Labels in percent without the sign, because labels such as "10%–20%" are
    # wider than a bar's slot when all 10 bins are shown.
    bars = [
        Bar(
            f"{row['low'] * 100:.0f}–{row['high'] * 100:.0f}",
            (row["churn_rate"] or 0.0) * 100,
            f"{row['churn_rate']:.0%}",
            NEUTRAL_COLOR,
        )
        for row in bins
    ]
    chart = vertical_bar_chart(
        bars,
        title=f"Observed churn per probability bin (%), {name}",
        y_label="Churn rate (%)",
        chart_id=f"calibration-chart-{number}",
        tick_format=lambda value: f"{value:g}%",
    )
    rows = [
        [
            _cell(f"{row['low']:.1f}–{row['high']:.1f}"),
            _num_cell(f"{row['accounts']:,}"),
            _num_cell(f"{row['mean_probability']:.1%}"),
            _num_cell(f"{row['churn_rate']:.1%}"),
        ]
        for row in bins
    ]
    table = _table(
        f"calibration-table-{number}",
        ["Probability bin", "Accounts", "Mean probability", "Churn rate"],
        [1, 2, 3],
        rows,
    )
    caption = (
        "Calibrated probability against observed churn per bin; a calibrated "
        "profile has the two close in every bin. Empty bins are not shown."
    )
    return _card(
        f"calibration-{number}", f"Calibration: {name}", caption, chart + table
    )


def _method_section(document: dict[str, Any], results: Sequence[dict[str, Any]]) -> str:
    folds = {r["probability"]["folds"] for r in results} - {None}
    fold_text = ", ".join(str(f) for f in sorted(folds)) or "no"
    settings = document["bootstrap"]
    notes = [
        "Risk is 100 minus the score. ROC AUC, PR AUC and lift use that ranking only.",
        "A health score is not a probability, so Brier score and calibration error "
        "use a probability from isotonic regression of churn on risk, cross-fitted "
        f"over {fold_text} stratified folds: each account's probability comes from "
        "a fit on the other folds. The bootstrap resamples these probabilities "
        "without refitting.",
        f"Intervals: percentile bootstrap, {settings['resamples']:,} resamples of "
        f"the accounts drawn with replacement, seed {settings['seed']}. Resamples "
        "on which a metric is undefined, such as ones without a churned account, "
        "are left out.",
        f"Generated at {document['generated_at']}.",
    ]
    items = "\n".join(f"<li>{_esc(note)}</li>" for note in notes)
    content = f'<ul class="notes">\n{items}\n</ul>'
    return _card("method", "How the figures are computed", "", content)
