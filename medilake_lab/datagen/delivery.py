"""Deliveries on demand: a landing volume, grown by one CDC batch per call.

Lab 05 streams from ``<warehouse>/volumes`` (:func:`medilake_lab.runtime.config.volume_dir`), a
data folder of its own; lab 06's pipeline reads another, ``<warehouse>/volumes/lab06``
(``volume="lab06"``), so that neither lab's deliveries change what the other's checks read.
For either volume, :func:`prepare_landing` copies the data folder's batch files and manifest
into it once, :func:`deliver` writes the next batch (``"004"``, ``"005"``, …) of every feed there
and extends its manifest. The bundled data folder is only ever read.

What a batch holds is decided in :mod:`medilake_lab.datagen.next_batch`, from the batches already
in the volume (:mod:`medilake_lab.datagen.feed_history`). Its manifest counts come from the
generator's :class:`~medilake_lab.datagen.manifest.FeedCounter` run over the written lines after
every earlier batch, so they follow the manifest's definitions exactly. Same seed (the
manifest's, else 42) and same earlier batches give byte-identical files. Every file is written
under a ``.``-prefixed temporary name (which Spark's file source ignores) and renamed into place,
the manifest last, so a stream never sees half a file.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np

from medilake_lab.contract.feeds import FEEDS, FILE_SUFFIX, LANDING_DIR, MANIFEST_NAME, delivered_batches
from medilake_lab.datagen.feed_history import FeedHistory, count_lines
from medilake_lab.datagen.manifest import assemble
from medilake_lab.datagen.next_batch import BatchPlan, change_windows, file_lines, record_columns, target_sizes
from medilake_lab.datagen.writer import write_file
from medilake_lab.errors import DataError
from medilake_lab.runtime import config

__all__ = ["Delivery", "deliver", "prepare_landing"]


@dataclass(frozen=True)
class Delivery:
    """One delivered batch.

    Attributes
    ----------
    batch: the batch id written, e.g. ``"004"``.
    volume: the landing volume (a data folder) written to.
    window: ``(changes_from, changes_to)``, ISO dates, both inclusive.
    files: feed name → path of the file written.
    counts: feed name → the manifest entry of that file (``lines``, ``exact_duplicates``,
        ``malformed_lines``, ``late_arriving``, ``newer_versions``, ``deletes``… as in
        :data:`medilake_lab.datagen.manifest.DEFINITIONS`, plus ``drift_columns``).
    """

    batch: str
    volume: Path
    window: tuple[str, str]
    files: dict[str, Path]
    counts: dict[str, dict]


def prepare_landing(data: str | os.PathLike | None = None,
                    warehouse: str | os.PathLike | None = None, volume: str | None = None) -> Path:
    """Copy the data folder's batch files and manifest into a landing volume, where missing.

    Idempotent: a file already in the volume is never overwritten; the data folder is only read.

    Parameters
    ----------
    data: raw-data folder (default :func:`medilake_lab.runtime.config.data_dir`).
    warehouse: warehouse root (default :func:`medilake_lab.runtime.config.warehouse_dir`).
    volume: ``None`` for lab 05's volume, else the name of a volume folder under
        ``<warehouse>/volumes`` (``"lab06"``), see :func:`medilake_lab.runtime.config.volume_dir`.

    Returns
    -------
    Path: the volume (a data folder): ``<warehouse>/volumes`` or ``<warehouse>/volumes/<volume>``.

    Raises
    ------
    DataError: the data folder holds no raw batch file (names the folder).
    ValueError: ``volume`` is not one folder name.
    """
    source, volume_root = config.data_dir(data), config.volume_dir(warehouse, volume)
    files = [Path(FEEDS[name].path(str(source), b)) for name in FEEDS
             for b in delivered_batches(source, name)]
    if not files:
        raise DataError(f"no raw files under {source / LANDING_DIR}: run `medilake_lab generate` or "
                        "pass --data DIR")
    manifest = source / LANDING_DIR / MANIFEST_NAME
    # A file source reads the oldest files first (modification time, in milliseconds): copies made
    # within one millisecond would be read in any order, so each batch's copy gets its own second,
    # in batch order, an hour back (a later delivery is always newer).
    hour_ago = time.time() - 3600
    for src in [*files, manifest] if manifest.exists() else files:
        dst = volume_root / src.relative_to(source)
        if not dst.exists():
            dst.parent.mkdir(parents=True, exist_ok=True)
            tmp = _temp(dst)
            shutil.copyfile(src, tmp)
            if src != manifest:
                stamp = hour_ago + int(src.name.removesuffix(FILE_SUFFIX).rsplit("_", 1)[1])
                os.utime(tmp, (stamp, stamp))
            os.replace(tmp, dst)
    return volume_root


def deliver(warehouse: str | os.PathLike | None = None,
            data: str | os.PathLike | None = None, volume: str | None = None) -> Delivery:
    """Write the next batch of every feed into a landing volume and extend its manifest.

    ``volume``: ``None`` for lab 05's volume, ``"lab06"`` for lab 06's (see :func:`prepare_landing`).

    Prepares the volume first (:func:`prepare_landing`) if needed. What the batch holds:
    :mod:`medilake_lab.datagen.next_batch` (a two-week window after the previous batch's, sized
    like the previous batch per day; lab_results carry ``specimen_type`` from batch 005 on).

    Returns
    -------
    Delivery: the batch id, window, files written and their manifest counts.

    Raises
    ------
    DataError: the volume's manifest is missing or damaged, or a batch file it lists is missing
        or unreadable (the message names the file).
    ValueError: ``volume`` is not one folder name.
    """
    root = prepare_landing(data, warehouse, volume)
    manifest_path = root / LANDING_DIR / MANIFEST_NAME
    manifest = _read_manifest(manifest_path)
    batch = f"{int(manifest['batches'][-1]) + 1:03d}"
    history = {name: FeedHistory.read(root, feed, manifest, manifest_path) for name, feed in FEEDS.items()}
    window, previous = change_windows(manifest, history)
    seed = manifest["seed"] if isinstance(manifest.get("seed"), int) else config.DEFAULT_SEED
    plan = BatchPlan(np.random.default_rng([seed, int(batch)]), batch, history, window, previous,
                     target_sizes(manifest, history))
    rows = plan.build()
    counts, files, info = {}, {}, {}
    for name, feed in FEEDS.items():
        lines = file_lines(plan.rng, feed, batch, rows[name], history[name])
        counts[name] = count_lines(history[name].counter, lines)
        counts[name]["drift_columns"] = [c for c in record_columns(feed, batch, history[name])
                                         if c not in feed.columns]
        files[name] = Path(feed.path(str(root), batch))
        tmp = _temp(files[name])
        info[name] = {"path": files[name].relative_to(root).as_posix(), **write_file(tmp, lines)}
        os.replace(tmp, files[name])
    _write_manifest(manifest_path, manifest, batch, window, counts, info, plan.demographic)
    return Delivery(batch, root, (window[0].isoformat(), window[1].isoformat()), files, counts)




# ---------------------------------------------------------------------------------------- files

def _temp(path: Path) -> Path:
    """A temporary name beside ``path`` that Spark's file source ignores (leading dot)."""
    return path.with_name(f".{path.name}.tmp")


def _read_manifest(path: Path) -> dict:
    fix = (f"move the volume {path.parent.parent} aside and run `medilake_lab deliver` again "
           "(it starts over from the bundled data)")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"the landing volume has no manifest {path}: {fix}") from None
    except (OSError, ValueError) as exc:
        raise DataError(f"the landing volume's manifest {path} is damaged ({exc}): {fix}") from None
    batches = manifest.get("batches") if isinstance(manifest, dict) else None
    feeds = manifest.get("feeds") if isinstance(manifest, dict) else None
    if not (isinstance(batches, list) and batches and all(isinstance(b, str) and b.isdigit()
                                                          for b in batches)
            and isinstance(feeds, dict) and all(isinstance(feeds.get(n), dict) for n in FEEDS)):
        raise DataError(f"the landing volume's manifest {path} is damaged (no list of batch ids "
                        f"or per-feed counts): {fix}")
    return manifest



def _write_manifest(path: Path, manifest: dict, batch: str, window: tuple[date, date],
                    counts: dict[str, dict], files: dict[str, dict], demographic: dict[str, int]) -> None:
    """Extend the manifest with ``batch`` and rewrite it atomically (totals and definitions anew)."""
    batches = [*manifest["batches"], batch]
    windows = {**(manifest.get("batch_windows") or {}),
               batch: {"kind": "CDC delivery", "changes_from": window[0].isoformat(),
                       "changes_to": window[1].isoformat()}}
    feeds = {name: {b: {k: v for k, v in c.items() if k != "drift_columns"}
                    for b, c in {**manifest["feeds"][name], batch: counts[name]}.items()}
             for name in FEEDS}
    drift = {name: {b: c.get("drift_columns", []) for b, c in {**manifest["feeds"][name],
                                                                batch: counts[name]}.items()}
             for name in FEEDS}
    changes = dict(manifest.get("demographic_changes") or {})
    for kind, n in demographic.items():
        changes[kind] = changes.get(kind, 0) + n
    all_files = {name: {**(manifest.get("files") or {}).get(name, {}), batch: files[name]} for name in FEEDS}
    as_of = window[1].isoformat()
    new = {**manifest, **assemble(manifest.get("seed"), manifest.get("scale"), as_of, batches, windows,
                                  feeds, changes, all_files, drift)}
    if isinstance(manifest.get("event_window"), dict):
        new["event_window"] = {**manifest["event_window"], "to": as_of}
    tmp = _temp(path)
    tmp.write_text(json.dumps(new, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)

