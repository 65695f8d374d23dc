"""The report's SVG charts, read back with an XML parser: well formed, shapes sized by value."""

import xml.etree.ElementTree as ET

import pytest

from eventlake import svg_charts

NS = {"svg": "http://www.w3.org/2000/svg"}


def _rects(svg: str) -> list[tuple[float, float, str]]:
    """(width, height, title) of every shape that carries a value."""
    root = ET.fromstring(svg)
    return [(float(r.get("width")), float(r.get("height")), r.find("svg:title", NS).text)
            for r in root.iterfind(".//svg:rect", NS) if r.find("svg:title", NS) is not None]


def test_stacked_columns_stack_each_series_in_proportion():
    svg = svg_charts.stacked_columns(["d1", "d2"], {"view": [30, 10], "buy": [10, 0]}, "events")
    shapes = {title: height for _, height, title in _rects(svg)}
    assert set(shapes) == {"d1 view: 30", "d2 view: 10", "d1 buy: 10"}  # a zero draws nothing
    assert shapes["d1 view: 30"] == pytest.approx(3 * shapes["d2 view: 10"], rel=0.02)
    assert shapes["d1 buy: 10"] == pytest.approx(shapes["d2 view: 10"], rel=0.02)
    assert ">view<" in svg and ">buy<" in svg  # the legend


def test_bars_are_as_long_as_their_values_and_labels_are_escaped():
    svg = svg_charts.bars([("<script>", 40), ("b & c", 10)], "errors")
    widths = {title: width for width, _, title in _rects(svg)}
    assert widths["<script>: 40"] == pytest.approx(4 * widths["b & c: 10"], rel=0.02)
    assert "<script>" not in svg and "&lt;script&gt;" in svg


def test_a_line_has_a_point_per_value_and_columns_one_bar_each():
    root = ET.fromstring(svg_charts.line(["a", "b", "c"], [10.0, 55.5, 100.0], "% joined", y_max=100))
    assert [c.find("svg:title", NS).text for c in root.iterfind(".//svg:circle", NS)] == ["a: 10", "b: 55.5", "c: 100"]
    assert len(_rects(svg_charts.columns(["v0", "v1"], [0, 7], "duplicates"))) == 2


@pytest.mark.parametrize("high,ticks", [(0, [0, 1]), (3, [0, 1, 2, 3]), (7, [0, 2, 4, 6, 8]),
                                        (4321, [0, 1000, 2000, 3000, 4000, 5000])])
def test_ticks_are_round_and_reach_the_highest_value(high, ticks):
    assert svg_charts.nice_ticks(high) == ticks
