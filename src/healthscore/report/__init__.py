"""The self-contained HTML report: one page a customer-success lead opens from disk.

:func:`render_report` and :func:`write_report` turn a :class:`ReportData` into HTML.
:func:`collect_report_data` builds that data from a store. It is imported on first
use, because it needs the history and evaluation layers while rendering needs only
pandas.
"""

from __future__ import annotations

from typing import Any

from healthscore.report.html import ReportData, render_report, write_report

__all__ = ["ReportData", "collect_report_data", "render_report", "write_report"]


def __getattr__(name: str) -> Any:
    if name == "collect_report_data":
        from healthscore.report.collect import collect_report_data

        return collect_report_data
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
