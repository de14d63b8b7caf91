"""The MediLake architecture picture (raw feeds → bronze → silver → gold), drawn from the kit's own
metadata, whole (``docs/architecture.png``, via ``docs/make_architecture.py``) or as the slice one lab
builds (the first cell of each lab).

Sources, so the picture cannot drift from what the labs build:

* raw feeds — :data:`medilake_lab.contract.feeds.FEEDS` (names, batches, file layout);
* tables per layer and the lab that builds each — ``medilake_lab/contract/labs.yaml`` (``tables``);
* feed → bronze → silver lineage — by name (``bronze.<feed>``; silver tables whose name starts
  with the feed name; ``silver.quarantine`` takes the rejects of every feed; lab 05's streams
  ``bronze.<feed>_stream`` → ``silver.<feed>_stream`` and lab 06's pipeline datasets
  ``bronze.<feed>_dp`` → ``silver.<feed>_dp`` likewise, by suffix);
* silver → gold lineage — :data:`medilake_lab.grader.reference.gold.LINEAGE` (what the grader's
  recomputation of each gold table reads) and :data:`DP_GOLD` for lab 06's gold views.

Tables of other schemas (e.g. lab 03's ``sandbox.*`` scratch copies) are listed in a footnote.
matplotlib is imported when the picture is drawn.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from medilake_lab.contract import feeds
from medilake_lab.contract.labs import all_labs, get_lab
from medilake_lab.grader.reference.gold import LINEAGE

if TYPE_CHECKING:
    from matplotlib.figure import Figure

LAYERS = ("raw", "bronze", "silver", "gold")
X = {"raw": 0.03, "bronze": 0.27, "silver": 0.52, "gold": 0.77}
WIDTH, HEIGHT, GAP = 0.2, 0.075, 0.032
FILL = {"raw": "#dbe9f6", "bronze": "#f0d9c4", "silver": "#e4e6ea", "gold": "#f7e7a6"}
EDGE = {"raw": "#4c72b0", "bronze": "#a0522d", "silver": "#6b7280", "gold": "#b8860b"}
TOP = 0.86


def collect() -> tuple[dict[str, list[tuple[str, str]]], list[str]]:
    """Layer → [(table name, label)] in lab order, and footnote lines for other schemas."""
    layers: dict[str, list[tuple[str, str]]] = {layer: [] for layer in LAYERS}
    batches = "/".join(feeds.BATCHES)
    layers["raw"] = [(f"raw.{f}", f"{f}\n{f}_{{{batches}}}{feeds.FILE_SUFFIX}") for f in feeds.FEEDS]
    other: dict[str, list[str]] = {}
    for lab in all_labs():
        for name in lab.tables:
            schema = name.split(".", 1)[0]
            if schema in layers:
                layers[schema].append((name, f"{name}\nlab {lab.id}"))
            else:
                other.setdefault(f"lab {lab.id} ({lab.title})", []).append(name)
    order = list(feeds.FEEDS)
    feed_of = {n: next((i for i, f in enumerate(order) if n.split(".", 1)[1].startswith(f)),
                       len(order)) for n, _ in layers["silver"]}
    layers["silver"].sort(key=lambda row: feed_of[row[0]])  # stable: lab order within a feed
    notes = [f"{who}: {', '.join(names)}" for who, names in other.items()]
    return layers, notes


#: Suffix of lab 05's streaming tables: raw feed → ``bronze.<feed>_stream`` → ``silver.<feed>_stream``.
#: Suffixes of the tables that labs 05 (streams) and 06 (pipeline datasets) build beside lab 01–04's.
SUFFIXES = ("_stream", "_dp")
#: Lab 06's gold materialized views and the silver view each reads (its pipeline's gold.sql).
DP_GOLD = {"gold.encounters_by_class_dp": "silver.encounters_dp",
           "gold.abnormal_results_by_test_dp": "silver.lab_results_dp"}


def lineage(layers: dict[str, list[tuple[str, str]]]) -> list[tuple[str, str, str]]:
    """(source, target, style) edges between table names."""
    names = {layer: [n for n, _ in rows] for layer, rows in layers.items()}
    edges = []
    for feed in feeds.FEEDS:
        if f"bronze.{feed}" in names["bronze"]:
            edges.append((f"raw.{feed}", f"bronze.{feed}", "solid"))
        for silver in names["silver"]:
            if (silver.split(".", 1)[1].startswith(feed) and not silver.endswith(SUFFIXES)
                    and f"bronze.{feed}" in names["bronze"]):
                edges.append((f"bronze.{feed}", silver, "solid"))
        for suffix in SUFFIXES:  # lab 05's streams and lab 06's pipeline: a dataset per layer
            if f"bronze.{feed}{suffix}" in names["bronze"]:
                edges.append((f"raw.{feed}", f"bronze.{feed}{suffix}", "solid"))
                if f"silver.{feed}{suffix}" in names["silver"]:
                    edges.append((f"bronze.{feed}{suffix}", f"silver.{feed}{suffix}", "solid"))
        if "silver.quarantine" in names["silver"] and f"bronze.{feed}" in names["bronze"]:
            edges.append((f"bronze.{feed}", "silver.quarantine", "dashed"))
    for gold, sources in [*LINEAGE.items(), *((g, (s,)) for g, s in DP_GOLD.items())]:
        edges += [(s, gold, "solid") for s in sources
                  if s in names["silver"] and gold in names["gold"]]
    return edges


def plot_architecture(lab: str | None = None) -> Figure:
    """The MediLake architecture: raw feeds → bronze → silver → gold, every table of the lab list with
    the lab that builds it, and their lineage. With ``lab`` ("01"), the slice that lab builds: its
    tables, the arrows into them and their sources keep their colours, everything else is faded
    (nothing is faded for a lab whose tables are all outside the four layers, e.g. lab 03's
    ``sandbox.*``). Raises LabNotFoundError for an unknown lab."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    layers, notes = collect()
    edges = lineage(layers)
    built = set(get_lab(lab).tables) & {n for rows in layers.values() for n, _ in rows} if lab else set()
    shown = built | {src for src, dst, _ in edges if dst in built}
    faded = (lambda name: name not in shown) if built else (lambda name: False)
    rows = max(len(v) for v in layers.values())
    fig = plt.figure(figsize=(14, 1.6 + 0.62 * rows))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.axis("off")
    step = (TOP - 0.1) / max(rows, 1)
    height = min(HEIGHT, step - GAP / 2)
    centre: dict[str, tuple[float, float]] = {}
    for layer in LAYERS:
        x = X[layer]
        title = {"raw": "raw feeds (NDJSON, gzip)", "bronze": "bronze — raw + metadata",
                 "silver": "silver — clean, CDC applied", "gold": "gold — analytics"}[layer]
        ax.text(x + WIDTH / 2, TOP + 0.07, title, ha="center", va="center", fontsize=12,
                fontweight="bold", color=EDGE[layer])
        for i, (name, label) in enumerate(layers[layer]):
            y = TOP - (i + 0.5) * step
            alpha = 0.25 if faded(name) else 1.0
            ax.add_patch(FancyBboxPatch((x, y - height / 2), WIDTH, height,
                                        boxstyle="round,pad=0.004,rounding_size=0.01",
                                        fc=FILL[layer], ec=EDGE[layer], lw=2.4 if name in built else 1.2,
                                        alpha=alpha))
            first, _, second = label.partition("\n")
            ax.text(x + WIDTH / 2, y + height * 0.16, first, ha="center", va="center",
                    fontsize=9.5, family="monospace", alpha=alpha)
            ax.text(x + WIDTH / 2, y - height * 0.24, second, ha="center", va="center",
                    fontsize=7.5, color="#444444", alpha=alpha)
            centre[name] = (x, y)
    for src, dst, style in edges:
        (x0, y0), (x1, y1) = centre[src], centre[dst]
        ax.add_patch(FancyArrowPatch((x0 + WIDTH, y0), (x1, y1), arrowstyle="-|>",
                                     mutation_scale=10, lw=0.8, linestyle=style,
                                     color="#555555" if style == "solid" else "#999999",
                                     shrinkA=2, shrinkB=2, alpha=0.2 if faded(dst) else 1.0,
                                     connectionstyle="arc3,rad=0.0"))
    footer = ["Generated from medilake_lab/contract/feeds.py, medilake_lab/contract/labs.yaml and "
              "medilake_lab/grader/reference/gold.LINEAGE (medilake_lab/course/architecture.py); "
              "dashed: rejected records go to silver.quarantine."] + notes
    if built:
        footer.insert(0, f"Lab {get_lab(lab).id} builds the tables drawn in full colour.")  # type: ignore[arg-type]
    ax.text(0.03, 0.045, "\n".join(footer), ha="left", va="center", fontsize=8, color="#555555")
    return fig
