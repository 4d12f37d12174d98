"""The self-contained HTML report: one page a customer-success lead opens from disk.

:func:`render_report` and :func:`write_report` turn a :class:`ReportData` into HTML.
:func:`collect_report_data` builds that data from a store, and :func:`score_auc`
computes the ROC AUC it shows. Both come from :mod:`healthscore.report.collect`,
which is imported on first use because it needs the store, history and evaluation
layers while rendering needs only pandas.
"""

from __future__ import annotations

from typing import Any

from healthscore.report.html import ReportData, render_report, write_report

__all__ = [
    "ReportData",
    "collect_report_data",
    "render_report",
    "score_auc",
    "write_report",
]

_COLLECT_NAMES = {"collect_report_data", "score_auc"}


def __getattr__(name: str) -> Any:
    if name in _COLLECT_NAMES:
        from healthscore.report import collect

        return getattr(collect, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
