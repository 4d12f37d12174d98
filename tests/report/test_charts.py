from __future__ import annotations

import math
import xml.etree.ElementTree as ET

import pytest

from healthscore.report.charts import (
    Bar,
    histogram_chart,
    horizontal_bar_chart,
    nice_ticks,
    vertical_bar_chart,
)


@pytest.mark.parametrize(
    ("max_value", "integer", "expected"),
    [
        pytest.param(87, False, [0, 20, 40, 60, 80, 100], id="round-up"),
        pytest.param(100, False, [0, 20, 40, 60, 80, 100], id="exact"),
        pytest.param(3, True, [0, 1, 2, 3], id="small-counts"),
        pytest.param(38_031, True, [0, 10_000, 20_000, 30_000, 40_000], id="large"),
        pytest.param(0.23, False, [0, 0.05, 0.1, 0.15, 0.2, 0.25], id="fraction"),
        pytest.param(12, True, [0, 5, 10, 15], id="integer-five"),
        pytest.param(0, True, [0, 1], id="zero-counts"),
        pytest.param(0, False, [0, 0.2, 0.4, 0.6, 0.8, 1], id="zero"),
        pytest.param(math.nan, False, [0, 0.2, 0.4, 0.6, 0.8, 1], id="nan"),
    ],
)
def test_nice_ticks_cases(
    max_value: float, integer: bool, expected: list[float]
) -> None:
    assert nice_ticks(max_value, integer=integer) == expected


def test_vertical_bar_chart_draws_one_rect_per_bar() -> None:
    bars = [
        Bar("Good", 50, "50", "#2f855a"),
        Bar("Average", 0, "0", "#d68c1e"),
        Bar("Poor", 100, "100", "#c53030"),
        Bar("None", math.nan, "no data", "#8a94a6"),
    ]

    svg = ET.fromstring(vertical_bar_chart(bars, title="t", y_label="y", chart_id="c"))
    rects = svg.findall("rect")

    # NaN draws nothing, zero draws an empty rect, and the plot is 220 px high.
    assert [r.get("data-label") for r in rects] == ["Good", "Average", "Poor"]
    assert [float(r.get("height")) for r in rects] == [110.0, 0.0, 220.0]
    assert float(rects[2].get("y")) == 28.0
    assert svg.get("id") == "c"
    assert svg.find("title").text == "t"


def test_vertical_bar_chart_axis_labels() -> None:
    bars = [Bar("A", 30, "30%", "#000")]

    svg = ET.fromstring(
        vertical_bar_chart(
            bars,
            title="t",
            y_label="Churn rate (%)",
            chart_id="c",
            tick_format=lambda value: f"{value:g}%",
        )
    )
    texts = [text.text for text in svg.findall("text")]

    # 30 / 5 intervals is a raw step of 6, which rounds up to 10.
    assert texts[:4] == ["0%", "10%", "20%", "30%"]
    assert "Churn rate (%)" in texts
    assert "A" in texts


def test_vertical_bar_chart_escapes_text() -> None:
    bars = [Bar('<x y="1">', 1, "<b>", 'red" onclick="x')]

    svg_text = vertical_bar_chart(bars, title="<t>", y_label="&", chart_id='"c')
    svg = ET.fromstring(svg_text)

    assert svg.find("rect").get("data-label") == '<x y="1">'
    assert svg.find("rect").get("fill") == 'red" onclick="x'
    assert "onclick=" not in svg_text.replace("onclick=&quot;", "")
    assert svg.find("title").text == "<t>"


def test_vertical_bar_chart_shortens_long_labels() -> None:
    label = "A very long band name that cannot fit under a bar"
    bars = [Bar(label, 1, "1", "#000") for _ in range(6)]

    svg = ET.fromstring(vertical_bar_chart(bars, title="t", y_label="y", chart_id="c"))
    texts = [text.text for text in svg.findall("text")]

    assert not any(text == label for text in texts)
    assert any(text.endswith("…") for text in texts)
    assert svg.find("rect").find("title").text == f"{label}: 1"


def test_horizontal_bar_chart_widths() -> None:
    bars = [Bar("engagement", 50, "50.0", "#000"), Bar("support", 100, "100", "#000")]

    svg = ET.fromstring(
        horizontal_bar_chart(bars, title="t", x_label="x", chart_id="c", x_max=100)
    )
    rects = svg.findall("rect")
    left = float(rects[0].get("x"))

    # The plot spans the chart width minus the label column and 120 px of value text.
    plot_width = 560 - left - 120
    assert [float(r.get("width")) for r in rects] == pytest.approx(
        [plot_width / 2, plot_width], abs=0.1
    )
    assert float(rects[1].get("y")) > float(rects[0].get("y"))


def test_histogram_chart_bins() -> None:
    svg = ET.fromstring(
        histogram_chart(
            [2, 0, 4],
            [0, 10, 20, 30],
            title="t",
            x_label="x",
            y_label="y",
            chart_id="h",
            colors=["#111", "#222", "#333"],
        )
    )
    bins = svg.findall("rect")

    assert [b.find("title").text for b in bins] == ["0–10: 2", "10–20: 0", "20–30: 4"]
    # The ticks run 0-4 over a 224 px plot.
    assert [float(b.get("height")) for b in bins] == [112.0, 0.0, 224.0]
    assert [b.get("fill") for b in bins] == ["#111", "#222", "#333"]
    assert [t.text for t in svg.findall("text")][-5:-1] == ["0", "10", "20", "30"]


def test_histogram_chart_rejects_mismatched_edges() -> None:
    with pytest.raises(ValueError, match="one more edge than counts"):
        histogram_chart(
            [1, 2],
            [0, 10],
            title="t",
            x_label="x",
            y_label="y",
            chart_id="h",
            colors=["#000", "#000"],
        )
