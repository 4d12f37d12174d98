from __future__ import annotations

import pytest

import healthscore.report as report


def test_report_package_exports_all_names() -> None:
    for name in report.__all__:
        assert callable(getattr(report, name)), name


def test_report_package_unknown_name() -> None:
    with pytest.raises(AttributeError, match="no attribute 'missing'"):
        report.missing  # noqa: B018
