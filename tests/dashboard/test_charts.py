"""The Overview's charts read time as their axis title says: UTC, 24-hour clock."""

from __future__ import annotations

import datetime as dt

import pandas as pd

from dashboard.charts import anomalies_chart, throughput_chart


def _axis_format(chart) -> str:
    return chart.to_dict()["encoding"]["x"]["axis"]["format"]


def test_time_axes_read_24_hour_utc_and_name_the_day_over_several_days() -> None:
    evening = dt.datetime(2026, 11, 26, 23, 44, tzinfo=dt.UTC)
    hour = pd.DataFrame(
        {"at": [evening, evening + dt.timedelta(minutes=5)], "status": "completed",
         "workflows": 3, "kind": "dropped", "anomalies": 1}
    )  # fmt: skip
    week = hour.assign(at=[evening - dt.timedelta(days=6), evening])
    assert _axis_format(throughput_chart(hour)) == "%H:%M"  # "23:44", not "11:44"
    assert _axis_format(anomalies_chart(hour)) == "%H:%M"
    assert _axis_format(throughput_chart(week)) == "%b %d %H:%M"


def test_tooltips_read_times_in_utc_as_the_axes_do() -> None:
    at = dt.datetime(2026, 11, 26, 23, 44, tzinfo=dt.UTC)
    frame = pd.DataFrame(
        {"at": [at], "status": "completed", "workflows": 3, "kind": "dropped", "anomalies": 1}
    )
    for chart in (throughput_chart(frame), anomalies_chart(frame)):
        spec = chart.to_dict()
        tips = {t["title"]: t["field"] for t in spec["encoding"]["tooltip"] if "title" in t}
        assert tips == {"at (UTC)": "at_utc"}  # text: the browser's zone cannot shift it
        (row,) = spec["datasets"].values()
        assert row[0]["at_utc"] == "2026-11-26 23:44"


def test_counts_are_labelled_in_whole_numbers() -> None:
    at = dt.datetime(2026, 11, 26, 23, 44, tzinfo=dt.UTC)
    frame = pd.DataFrame(  # one run per bucket: Vega labelled 0.2, 0.4... workflows
        {"at": [at], "status": "completed", "workflows": 1, "kind": "dropped", "anomalies": 1}
    )
    for chart in (throughput_chart(frame), anomalies_chart(frame)):
        axis = chart.to_dict()["encoding"]["y"]["axis"]
        assert axis["tickMinStep"] == 1 and axis["format"] == "d"


def test_time_axes_tick_no_more_often_than_their_minute_labels_change() -> None:
    # over three minutes of runs Vega ticked every 30 s: "20:05 20:05 20:06 20:06 20:07"
    at = dt.datetime(2026, 11, 26, 20, 5, tzinfo=dt.UTC)
    frame = pd.DataFrame(
        {"at": [at + dt.timedelta(minutes=m) for m in range(3)], "status": "completed",
         "workflows": 40, "kind": "dropped", "anomalies": 1}
    )  # fmt: skip
    for chart in (throughput_chart(frame), anomalies_chart(frame)):
        axis = chart.to_dict()["encoding"]["x"]["axis"]
        assert axis["format"] == "%H:%M"
        # Vega asks for at most span / tickMinStep + 1 ticks: two minutes apart at least
        # makes it choose whole minutes (at one minute, a two-minute span got 30 s ticks)
        assert axis["tickMinStep"] >= 120_000
