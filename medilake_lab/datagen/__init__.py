"""Synthetic EHR raw feeds: six gzip NDJSON feeds in three batches, plus a manifest.

``generate(out_dir)`` writes ``<out_dir>/landing/<feed>/<feed>_<batch>.json.gz`` for every feed
of :data:`medilake_lab.contract.feeds.FEEDS` and batch of :data:`medilake_lab.contract.feeds.BATCHES`, and
``<out_dir>/landing/manifest.json`` counting every kind of deliberate mess. Pure Python + numpy;
the same seed and scale always give byte-identical files.

Generation is atomic: the files are written into a temporary folder inside ``out_dir`` and the
new ``landing/`` replaces the previous one only when complete, so a failure (or Ctrl-C) leaves the
previous data as it was.

Clinical events span ``START_DATE`` .. ``AS_OF_DATE``; batch "001" is the initial load (every
change up to 2025-06-30), "002" and "003" are CDC deliveries (see ``BATCH_WINDOWS``).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import nullcontext
from pathlib import Path

import numpy as np

from medilake_lab.contract.feeds import BATCHES, DRIFT_COLUMN, FEEDS, LANDING_DIR, MANIFEST_NAME
from medilake_lab.datagen.conditions import assign_chronic, onset_times
from medilake_lab.datagen.diagnoses import build_diagnoses
from medilake_lab.datagen.encounters import build_encounters
from medilake_lab.datagen.frame import Versions, delete_with_parent, until_end
from medilake_lab.datagen.labs import build_labs
from medilake_lab.datagen.manifest import DEFINITIONS, FeedCounter, assemble
from medilake_lab.datagen.medications import build_medications
from medilake_lab.datagen.mess import add_mess
from medilake_lab.datagen.people import PATIENTS_PER_SCALE, build_patients
from medilake_lab.datagen.pools import build_pools
from medilake_lab.datagen.procedures import build_procedures
from medilake_lab.datagen.timeline import (
    AS_OF_DATE,
    BATCH_KINDS,
    BATCH_WINDOWS,
    DAY,
    END_TS,
    START_DATE,
    START_TS,
)
from medilake_lab.datagen.writer import batch_lines, columns, write_file
from medilake_lab.errors import ScaleError

__all__ = [
    "AS_OF_DATE",
    "BATCH_WINDOWS",
    "DEFINITIONS",
    "MAX_SCALE",
    "MIN_SCALE",
    "PATIENTS_PER_SCALE",
    "START_DATE",
    "check_scale",
    "generate",
]

#: scale 30 is the largest the speed benchmarks run (issue 20: labs 01–04 on a cluster and in local mode)
MIN_SCALE, MAX_SCALE = 0.01, 30.0
#: What one scale unit costs, measured (seed 42, scales 1 and 5; grows linearly).
PER_SCALE_UNIT = "about 1,500 patients, 2.2 MB of gzip files and 90 MB of memory while generating"

#: Random streams, one per component, so changing one feed's logic leaves the others alone.
_STREAMS = ("patients", "chronic", "encounters", "diagnoses", "procedures", "labs",
            "medications", "cascade", "mess")


def _build(seed: int, scale: float) -> tuple[dict[str, Versions], dict[str, int], dict[str, int],
                                             np.random.Generator]:
    """Natural versions of every feed (before mess), demographic change counts, counts of the
    changes from and to null, mess rng."""
    rng = dict(zip(_STREAMS, (np.random.default_rng(s)
                              for s in np.random.SeedSequence(seed).spawn(len(_STREAMS))), strict=True))
    pools = build_pools(seed)
    pat = build_patients(rng["patients"], pools, scale)
    age = (END_TS - pat.birth) / (365.25 * DAY)
    start = np.maximum(pat.registered, START_TS)
    has = assign_chronic(rng["chronic"], age)
    onset = onset_times(rng["chronic"], has, pat.birth, start)
    n_prov = 20 + round(40 * scale)
    enc = build_encounters(rng["encounters"], pat.n, start, has.sum(axis=1), pat.ids, n_prov)
    dx = build_diagnoses(rng["diagnoses"], enc, has, onset, pat.ids)
    proc, proc_enc = build_procedures(rng["procedures"], enc, dx.primary, pat.ids, n_prov)
    labs, lab_enc = build_labs(rng["labs"], enc, has, pat.ids)
    meds, med_enc = build_medications(rng["medications"], enc, has, onset, dx.primary, pat.ids)
    cascade = rng["cascade"]
    deleted_at = np.where(enc.deleted, enc.deleted_at, -1)
    children = {
        "diagnoses": delete_with_parent(dx.versions, dx.encounter[dx.versions.ent], deleted_at,
                                        cascade),
        "procedures": delete_with_parent(proc, proc_enc[proc.ent], deleted_at, cascade),
        "lab_results": delete_with_parent(labs, lab_enc[labs.ent], deleted_at, cascade),
        "medications": delete_with_parent(meds, med_enc[meds.ent], deleted_at, cascade),
    }
    versions = {"patients": pat.versions, "encounters": enc.versions, **children}
    return ({name: until_end(v) for name, v in versions.items()}, dict(pat.changes),
            dict(pat.null_changes), rng["mess"])


def check_scale(scale: float) -> float:
    """``scale`` if it is a finite number in ``[MIN_SCALE, MAX_SCALE]``.

    Raises
    ------
    ScaleError: not such a number (inf, nan, 0, negative, too large); the message gives the
        range and what one scale unit costs.
    """
    if not (isinstance(scale, int | float) and math.isfinite(scale) and MIN_SCALE <= scale <= MAX_SCALE):
        raise ScaleError(f"scale must be a number from {MIN_SCALE:g} to {MAX_SCALE:g}, got {scale!r} "
                         f"(one scale unit is {PER_SCALE_UNIT}; scale {MAX_SCALE:g} needs about "
                         f"{90 * MAX_SCALE / 1000:.1f} GB of memory)")
    return scale


def generate(out_dir: str | os.PathLike, scale: float = 1.0, seed: int = 42,
             progress: bool = False) -> dict:
    """Generate the six raw feeds and the manifest under ``<out_dir>/landing``, atomically.

    Parameters
    ----------
    out_dir: data folder (created if missing); files go to
        ``<out_dir>/landing/<feed>/<feed>_<batch>.json.gz`` and ``<out_dir>/landing/manifest.json``.
        They are written into a temporary folder ``<out_dir>/.generating-*`` first; only when
        every file is written does the new ``landing/`` replace the previous one (as a whole).
    scale: size factor in ``[MIN_SCALE, MAX_SCALE]``; scale 1 is about 1,500 patients and
        90,000 lines, every feed grows proportionally (see ``PER_SCALE_UNIT``).
    seed: random seed; the same ``(seed, scale)`` gives byte-identical files.
    progress: show a rich progress bar on the terminal.

    Returns
    -------
    dict: the manifest (also written as JSON), with per-feed per-batch counts under
    ``"feeds"``, their sums under ``"totals"`` (``totals["lines"]``: all lines written) and
    the definition of every count under ``"definitions"``.

    Raises
    ------
    ScaleError: ``scale`` is not a finite number in range (nothing is written).
    OSError: a file could not be written; the previous ``landing/`` is left as it was.
    """
    check_scale(scale)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".generating-", dir=out))
    try:
        manifest = _write(staging, scale, seed, progress)
        target, previous = out / LANDING_DIR, staging / "previous"
        if target.exists():
            target.replace(previous)
        try:
            (staging / LANDING_DIR).replace(target)
        except OSError:
            if previous.exists():
                previous.replace(target)
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return manifest


def _write(out: Path, scale: float, seed: int, progress: bool) -> dict:
    """Write the feeds and the manifest under ``<out>/landing``; returns the manifest."""
    bar = _progress() if progress else nullcontext()
    with bar as p, ThreadPoolExecutor(max_workers=2) as pool:
        task = p.add_task("building records", total=len(FEEDS) * (len(BATCHES) + 1)) if p else None
        versions, changes, null_changes, rng = _build(seed, scale)
        if p:
            p.update(task, description="writing feeds")
        counts: dict[str, dict[str, dict]] = {}
        files: dict[str, dict[str, dict]] = {}
        drift: dict[str, dict[str, list[str]]] = {}
        futures: dict[tuple[str, str], Future[dict]] = {}
        for name, feed in FEEDS.items():
            delivery = add_mess(versions.pop(name), feed, rng)
            counter = FeedCounter(feed)
            counts[name], drift[name] = {}, {}
            for b, batch in enumerate(BATCHES):
                lines, idx, ts = batch_lines(delivery, feed, b)
                counts[name][batch] = counter.count(delivery, idx, lines, ts)
                drift[name][batch] = [c for c in columns(feed, batch) if c == DRIFT_COLUMN]
                futures[(name, batch)] = pool.submit(
                    write_file, Path(feed.path(str(out), batch)), lines)
                if p:
                    p.update(task, advance=1, description=f"writing {name} {batch}")
            if p:
                p.update(task, advance=1)
        for (name, batch), fut in futures.items():
            rel = Path(FEEDS[name].path(".", batch)).as_posix().removeprefix("./")
            files.setdefault(name, {})[batch] = {"path": rel, **fut.result()}
    windows = {b: {"kind": BATCH_KINDS[b], "changes_from": w[0], "changes_to": w[1]}
               for b, w in BATCH_WINDOWS.items()}
    manifest = assemble(seed, scale, AS_OF_DATE, list(BATCHES), windows, counts, changes, files,
                        drift, null_changes)
    manifest["event_window"] = {"from": START_DATE, "to": AS_OF_DATE}
    path = out / LANDING_DIR / MANIFEST_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def _progress():
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(TextColumn("{task.description:<28}"), BarColumn(), TimeElapsedColumn())
