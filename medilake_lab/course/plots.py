"""Small matplotlib figures the lab notebooks share (lab 01: deliveries, the Delta log; lab 02: rows per key,
MERGE metrics, an SCD2 timeline; lab 07: refresh cost, files holding a patient).

Each function takes a pandas DataFrame shaped as its docstring says, draws one figure and returns it
(the notebook shows it with ``plt.show()``); matplotlib is imported when a function is called, so
importing this module stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure


def plot_refresh_cost(cost: pd.DataFrame) -> Figure:
    """Rows and files an incremental refresh touched next to what a full refresh rewrites.

    ``cost``: one row per table, columns ``table`` (str), ``incremental_rows``, ``full_rows``,
    ``incremental_files``, ``full_files`` (ints). Two horizontal bar charts (rows, files), log
    scale so that 3 rows and 30,000 rows are both visible. Raises KeyError when a column is missing.
    """
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 0.9 + 0.55 * len(cost)), sharey=True)
    y = range(len(cost))
    for ax, unit in zip(axes, ("rows", "files"), strict=True):
        inc, full = cost[f"incremental_{unit}"], cost[f"full_{unit}"]
        ax.barh([i + 0.2 for i in y], full, height=0.4, color="#c44e52", label="full refresh")
        ax.barh([i - 0.2 for i in y], inc, height=0.4, color="#4c72b0", label="from the changes (MERGE)")
        for i, (a, b) in enumerate(zip(inc, full, strict=True)):
            ax.text(max(a, 0.8), i - 0.2, f" {a:,}", va="center", fontsize=8)
            ax.text(max(b, 0.8), i + 0.2, f" {b:,}", va="center", fontsize=8)
        ax.set_xscale("symlog", linthresh=1)
        ax.set(title=f"{unit} written", xlabel=f"{unit} (log scale)")
    axes[0].set_yticks(list(y), cost["table"])
    axes[0].invert_yaxis()
    axes[1].legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    return fig


def plot_patient_files(steps: pd.DataFrame) -> Figure:
    """Files that hold a patient after each step of an erasure, stacked by kind.

    ``steps``: indexed by step label (str, in order), one int column per kind of file (e.g.
    ``"current snapshot"``, ``"older versions only"``, ``"change data"``). One stacked bar per step
    with its total on top.
    """
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 3.4))
    bottom = [0] * len(steps)
    colors = ["#c44e52", "#dd8452", "#8172b3", "#937860"]
    for i, kind in enumerate(steps.columns):
        ax.bar(steps.index, steps[kind], bottom=bottom, label=kind, color=colors[i % len(colors)])
        bottom = [b + v for b, v in zip(bottom, steps[kind], strict=True)]
    for x, total in enumerate(bottom):
        ax.text(x, total, f"{total:,}", ha="center", va="bottom", fontsize=9)
    ax.set(title="Parquet files holding the patient's id, MRN or name", ylabel="files",
           ylim=(0, max(bottom + [1]) * 1.18))
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


# ------------------------------------------------------------------ labs 01 and 02 (issue 19)

#: Colours of the kinds of mess and of the Delta actions, the same in every figure
MESS_COLOURS = {"lines": "#9aa5b1", "exact_duplicates": "#dd8452", "malformed_lines": "#c44e52",
                "late_arriving": "#8172b3", "out_of_order": "#937860"}
ACTION_COLOURS = {"inserted": "#55a868", "updated": "#4c72b0", "deleted": "#c44e52"}


def _finish_grid(fig: Figure, axes: list, ylabel: str, title: str) -> Figure:
    """Y label on the first chart, one shared legend under the grid, the title; returns ``fig``."""
    axes[0].set_ylabel(ylabel)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncols=len(labels), fontsize=8, frameon=False)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    return fig


def _grid(count: int, width: float = 11, row_height: float = 2.6):
    """A figure with ``count`` small axes in rows of three (unused ones hidden)."""
    import matplotlib.pyplot as plt

    rows = -(-count // 3)
    fig, axes = plt.subplots(rows, 3, figsize=(width, 0.6 + row_height * rows), squeeze=False)
    for ax in axes.flat[count:]:
        ax.set_visible(False)
    return fig, list(axes.flat[:count])


def _grouped_bars(ax, groups: list[str], series: dict[str, list[int]], colours: dict[str, str]) -> None:
    """Bars of several series side by side per group, on a log scale that keeps 0 and 1 visible."""
    width = 0.8 / max(len(series), 1)
    for i, (name, values) in enumerate(series.items()):
        xs = [g + (i - (len(series) - 1) / 2) * width for g in range(len(groups))]
        ax.bar(xs, values, width=width, color=colours[name], label=name.replace("_", " "))
    ax.set_xticks(range(len(groups)), groups)
    ax.set_yscale("symlog", linthresh=1)
    top = max((v for values in series.values() for v in values), default=1)
    ax.set_ylim(0, max(top, 1) * 4)  # head room above the tallest bar on the log scale


def plot_deliveries(counts: pd.DataFrame) -> Figure:
    """What each delivery holds, per feed and batch: its lines next to the mess in them.

    ``counts``: one row per feed and batch, columns ``feed``, ``batch`` (str) and the ints ``lines``,
    ``exact_duplicates``, ``malformed_lines``, ``late_arriving``, ``out_of_order`` (the raw data's
    ``manifest.json`` counts them). One small chart per feed, log scale (a batch of 40,000 lines and
    3 malformed ones both show). Raises KeyError when a column is missing.
    """
    feeds = list(dict.fromkeys(counts["feed"]))
    fig, axes = _grid(len(feeds))
    for ax, feed in zip(axes, feeds, strict=True):
        rows = counts[counts["feed"] == feed].sort_values("batch")
        _grouped_bars(ax, list(rows["batch"]), {kind: list(rows[kind]) for kind in MESS_COLOURS}, MESS_COLOURS)
        ax.set_title(feed, fontsize=10)
    return _finish_grid(fig, axes, "records (log scale)", "Deliveries per feed and batch, and the mess in them")


#: Delta log action kinds in the order a commit file is drawn, and their colours
ACTION_KINDS = {"protocol": "#8172b3", "metaData": "#dd8452", "remove": "#c44e52", "add": "#55a868",
                "cdc": "#937860", "txn": "#da8bc3", "commitInfo": "#9aa5b1"}


def plot_delta_log(commits: pd.DataFrame, table: str) -> Figure:
    """A Delta table's transaction log: one row per commit file, one box per kind of action in it
    (``protocol``, ``metaData``, ``remove``, ``add``, …, ``commitInfo``), labelled with the count.

    ``commits``: one row per commit, columns ``version`` (int), ``operation`` (str, from its
    ``commitInfo``) and one int column per action kind found (missing or NaN counts are 0; kinds
    not in :data:`ACTION_KINDS` are drawn last, in grey). ``table`` titles the figure.
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    commits = commits.sort_values("version").fillna(0)
    kinds = [k for k in ACTION_KINDS if k in commits] + [k for k in commits if k not in ACTION_KINDS
                                                         and k not in ("version", "operation")]
    fig, ax = plt.subplots(figsize=(9, 1.0 + 0.5 * len(commits)))
    for row, (_, commit) in enumerate(commits.iterrows()):
        x = 0.0
        for kind in kinds:
            count = int(commit[kind])
            if count:
                ax.barh(row, 1.6, left=x, height=0.6, color=ACTION_KINDS.get(kind, "#cccccc"), edgecolor="white")
                ax.text(x + 0.8, row, kind if count == 1 else f"{kind} ×{count}", ha="center", va="center",
                        fontsize=7)
                x += 1.6
    ax.set_yticks(range(len(commits)), [f"{v:020d}.json\n{op}" for v, op in zip(commits["version"],
                                                                                commits["operation"], strict=True)],
                  fontsize=7)
    ax.invert_yaxis()
    ax.set_xticks([])
    ax.set_xlim(0, 1.6 * max(len(kinds), 1))
    ax.set(title=f"{table}/_delta_log: the actions in each commit file")
    ax.legend(handles=[Patch(color=ACTION_KINDS.get(k, "#cccccc"), label=k) for k in kinds], fontsize=7,
              loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    fig.tight_layout()
    return fig


def plot_versions_per_key(versions: pd.DataFrame) -> Figure:
    """How many rows each key has in bronze, per feed: what deduplication has to collapse.

    ``versions``: columns ``feed`` (str), ``versions`` (int, rows of one key) and ``keys`` (int,
    keys with that many rows). One group of bars per number of rows, one bar per feed, log scale.
    """
    import matplotlib.pyplot as plt

    feeds = list(dict.fromkeys(versions["feed"]))
    counts = sorted(set(versions["versions"]))
    palette = ["#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860"]
    colours = {feed: palette[i % len(palette)] for i, feed in enumerate(feeds)}
    table = versions.pivot_table(index="versions", columns="feed", values="keys", fill_value=0)
    fig, ax = plt.subplots(figsize=(9, 3.4))
    _grouped_bars(ax, [str(c) for c in counts],
                  {feed: [int(table.at[c, feed]) if c in table.index else 0 for c in counts] for feed in feeds},
                  colours)
    ax.set(title="Rows per key in bronze (1 = delivered once)", xlabel="rows of one key",
           ylabel="keys (log scale)")
    ax.legend(fontsize=8, ncols=2)
    fig.tight_layout()
    return fig


def plot_merge_metrics(metrics: pd.DataFrame) -> Figure:
    """What each MERGE did, per table and batch: rows inserted, updated and deleted.

    ``metrics``: one row per table and batch, columns ``table``, ``batch`` (str), ``inserted``,
    ``updated``, ``deleted`` (ints, the MERGE's metrics). One small chart per table, log scale.
    """
    tables = list(dict.fromkeys(metrics["table"]))
    fig, axes = _grid(len(tables))
    for ax, table in zip(axes, tables, strict=True):
        rows = metrics[metrics["table"] == table].sort_values("batch")
        _grouped_bars(ax, list(rows["batch"]), {k: list(rows[k]) for k in ("inserted", "updated", "deleted")},
                      ACTION_COLOURS)
        ax.set_title(table, fontsize=10)
    return _finish_grid(fig, axes, "rows (log scale)", "MERGE per batch: rows inserted, updated, deleted")


def plot_scd2_timeline(history: pd.DataFrame, patient: str) -> Figure:
    """One patient's SCD Type 2 versions as bars from ``effective_from`` to ``effective_to``.

    ``history``: one row per version, columns ``effective_from`` and ``effective_to`` (datetimes;
    ``effective_to`` NaT/None for the current version, drawn up to the latest date shown plus a
    margin) and ``label`` (str, what the version holds, e.g. its address). ``patient`` titles it.
    """
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt
    import pandas as pd

    history = history.sort_values("effective_from")
    starts = pd.to_datetime(history["effective_from"])
    ends = pd.to_datetime(history["effective_to"])
    last = max([*starts, *ends.dropna()])
    open_end = last + (last - starts.min()) * 0.15 + pd.Timedelta(days=1)
    fig, ax = plt.subplots(figsize=(10, 1.3 + 0.55 * len(history)))
    names = []
    for i, (start, end, label) in enumerate(zip(starts, ends, history["label"], strict=True)):
        current = pd.isna(end)
        ax.barh(i, (open_end if current else end) - start, left=start, height=0.5,
                color="#55a868" if current else "#9aa5b1", hatch="//" if current else None)
        names.append(f"v{i + 1}  {label}" + ("\n(current: effective_to NULL)" if current else ""))
    ax.set_yticks(range(len(history)), names, fontsize=8)
    ax.invert_yaxis()
    locator = mdates.AutoDateLocator()
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    ax.set(title=f"silver.patients_scd: the versions of {patient}", xlabel="effective_from → effective_to")
    fig.tight_layout()
    return fig
