"""The lab 01/02 figures (medilake_lab.course.plots) draw the numbers they are given: bar heights and
widths read back from the figure equal the input frame's values. No Spark; matplotlib's Agg backend."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib
import pandas as pd
import pytest

from medilake_lab.contract import feeds
from medilake_lab.course import plots

matplotlib.use("Agg")


def _bars(ax) -> list:
    return [patch for patch in ax.patches if patch.get_visible()]


def test_deliveries_draw_the_manifest_counts_per_feed_and_batch(bundled_data: Path) -> None:
    manifest = json.loads((bundled_data / feeds.LANDING_DIR / feeds.MANIFEST_NAME).read_text())
    frame = pd.DataFrame([{"feed": f, "batch": b, **counts} for f, batches in manifest["feeds"].items()
                          for b, counts in batches.items()])
    fig = plots.plot_deliveries(frame)
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in axes] == list(manifest["feeds"])
    patients = frame[frame["feed"] == "patients"].sort_values("batch")
    heights = [bar.get_height() for bar in _bars(axes[0])]
    expected = [v for kind in plots.MESS_COLOURS for v in patients[kind]]  # series by series
    assert heights == expected and axes[0].get_yscale() == "symlog"


def test_delta_log_draws_one_box_per_action_kind_of_each_commit() -> None:
    commits = pd.DataFrame({"version": [1, 0, 2], "operation": ["WRITE", "CREATE TABLE AS SELECT", "OPTIMIZE"],
                            "commitInfo": [1, 1, 1], "add": [4, 1, 1], "remove": [0, 0, 7],
                            "protocol": [None, 1, None], "metaData": [None, 1, None]})
    ax = plots.plot_delta_log(commits, "bronze.encounters").axes[0]
    boxes = [(round(bar.get_y() + bar.get_height() / 2), bar.get_facecolor()) for bar in _bars(ax)]
    colour = {kind: matplotlib.colors.to_rgba(c) for kind, c in plots.ACTION_KINDS.items()}
    assert boxes == [(0, colour["protocol"]), (0, colour["metaData"]), (0, colour["add"]), (0, colour["commitInfo"]),
                     (1, colour["add"]), (1, colour["commitInfo"]),
                     (2, colour["remove"]), (2, colour["add"]), (2, colour["commitInfo"])]
    assert [t.get_text() for t in ax.texts] == ["protocol", "metaData", "add", "commitInfo", "add ×4", "commitInfo",
                                                "remove ×7", "add", "commitInfo"]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels[0] == "00000000000000000000.json\nCREATE TABLE AS SELECT" and labels[2].endswith("OPTIMIZE")


def test_versions_per_key_and_merge_metrics_draw_their_counts() -> None:
    versions = pd.DataFrame({"feed": ["patients", "patients", "encounters"], "versions": [1, 3, 1],
                             "keys": [1400, 12, 9000]})
    ax = plots.plot_versions_per_key(versions).axes[0]
    assert [bar.get_height() for bar in _bars(ax)] == [1400, 12, 9000, 0]  # patients 1, 3; encounters 1, 3
    metrics = pd.DataFrame({"table": ["silver.a", "silver.a", "silver.b"], "batch": ["002", "001", "001"],
                            "inserted": [5, 100, 7], "updated": [9, 0, 0], "deleted": [2, 0, 1]})
    axes = [ax for ax in plots.plot_merge_metrics(metrics).axes if ax.get_visible()]
    assert [ax.get_title() for ax in axes] == ["silver.a", "silver.b"]
    assert [bar.get_height() for bar in _bars(axes[0])] == [100, 5, 0, 9, 0, 2]


def test_scd2_timeline_draws_each_version_from_start_to_end() -> None:
    history = pd.DataFrame({"effective_from": pd.to_datetime(["2025-03-01", "2025-01-01"]),
                            "effective_to": [pd.NaT, pd.Timestamp("2025-03-01")],
                            "label": ["2 New St, Springfield", "1 Old Rd, Springfield"]})
    ax = plots.plot_scd2_timeline(history, "PAT00001").axes[0]
    closed, current = _bars(ax)
    assert closed.get_width() == pytest.approx(59)  # days from 1 Jan to 1 Mar 2025
    assert current.get_x() == pytest.approx(closed.get_x() + 59) and current.get_hatch() == "//"
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == ["v1  1 Old Rd, Springfield", "v2  2 New St, Springfield\n(current: effective_to NULL)"]


def test_architecture_slice_keeps_the_labs_tables_and_their_sources_in_colour() -> None:
    from medilake_lab.contract.labs import get_lab
    from medilake_lab.course.architecture import plot_architecture

    def alphas(lab: str | None) -> dict[str, float]:
        ax = plot_architecture(lab).axes[0]
        return {t.get_text(): (1.0 if t.get_alpha() is None else t.get_alpha()) for t in ax.texts}

    sliced = alphas("02")
    assert all(sliced[name] == 1.0 for name in get_lab("02").tables)
    assert sliced["bronze.encounters"] == 1.0  # a source of lab 02's tables
    assert all(sliced[name] < 1.0 for name in get_lab("04").tables)
    assert any(text.startswith("Lab 02 builds the tables drawn in full colour.") for text in sliced)
    whole = alphas("03")  # lab 03's tables are sandbox scratch tables: nothing is faded
    assert {name: a for name, a in whole.items() if a < 1.0} == {}
