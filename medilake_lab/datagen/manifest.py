"""The manifest: per feed and batch, how many lines of each kind of mess were delivered.

Counts follow :data:`DEFINITIONS` exactly and are computed from the delivered lines in file
order (never from the generator's intentions), so anyone can recount them from the files.
"""

from __future__ import annotations

from hashlib import blake2b

import numpy as np

from medilake_lab import __version__
from medilake_lab.contract.codes import CODE_TABLES
from medilake_lab.contract.feeds import Feed
from medilake_lab.datagen.mess import Delivery

FORMAT_VERSION = 1

#: Count kinds in manifest order, each with the one-sentence definition it follows.
DEFINITIONS: dict[str, str] = {
    "lines": "Physical lines in the file.",
    "valid_records": "Lines that parse as a JSON object.",
    "malformed_lines": "Lines that do not parse as a JSON object (lines - valid_records).",
    "exact_duplicates": "Valid records whose line is byte-identical to an earlier line of the "
                        "same feed, in this or an earlier batch.",
    "inserts": "Valid, non-duplicate records with op I.",
    "newer_versions": "Valid, non-duplicate records with op U whose key appeared in an earlier "
                      "valid, non-duplicate record of the same feed (out_of_order ones included).",
    "out_of_order": "Valid, non-duplicate records with op U whose updated_at is older than the "
                    "newest updated_at already delivered for that key.",
    "late_arriving": "Valid, non-duplicate records with op I in batch 002 or later whose "
                     "updated_at is older than the newest updated_at of all valid records of "
                     "the previous batch of the same feed.",
    "deletes": "Valid, non-duplicate records with op D.",
    "null_required": "Valid, non-duplicate records where a field of Feed.required is null or "
                     "missing.",
    "invalid_codes": "Valid, non-duplicate records whose code column is non-null and not in the "
                     "code table of medilake_lab.codes.",
}
KINDS: tuple[str, ...] = tuple(DEFINITIONS)
DRIFT_DEFINITION = "Columns present in the batch's records beyond the feed's contract columns."
FILES_DEFINITION = ("Per feed and batch: the file path under the data folder and the SHA-256 of "
                    "its uncompressed NDJSON content.")
DEMOGRAPHIC_DEFINITION = ("Patient op U versions (in order, not stale) that change the address "
                          "(address_line/city/zip), the insurance (payer/member id) or the "
                          "last name, by kind.")
NULL_CHANGES_DEFINITION = ("Of the demographic_changes, those whose SCD2 tracked attributes (first_name, "
                           "last_name, address_line, city, state, zip, insurance_payer, "
                           "insurance_member_id) differ from the patient's previous version only "
                           "where one side is null: to_null (a value became null), from_null (a "
                           "null got a value). Each is the only change of its patient in its batch, "
                           "so it is a version of its own in silver.patients_scd; a change detection "
                           "with = or <> instead of the null-safe <=> misses it.")


class FeedCounter:
    """Counts one feed's batches in delivery order (state carries across batches)."""

    def __init__(self, feed: Feed) -> None:
        self.feed = feed
        self.seen: set[bytes] = set()  # 128-bit digests of the lines delivered so far
        self.keys_max: dict = {}
        self.prev_max: str | None = None
        table = CODE_TABLES.get(feed.code_system) if feed.code_system else None
        self.codes = set(table) if table else None

    def count(self, d: Delivery, idx: np.ndarray, lines: list[str], ts: list) -> dict:
        """Counts of one batch file.

        Parameters
        ----------
        d: the feed's delivery; idx: row of ``d`` for each line (file order).
        lines: the file's lines; ts: formatted ``updated_at`` per line (None if null).
        """
        f = self.feed
        c = dict.fromkeys(KINDS, 0)
        c["lines"] = len(lines)
        mal = d.malformed[idx] > 0
        ops = d.v.op[idx].tolist()
        keys = d.v.cols[f.key][idx].tolist()
        null = np.zeros(len(idx), dtype=bool)
        for name in f.required:
            if name == "updated_at":
                null |= np.array([t is None for t in ts], dtype=bool)
            elif name != "op":
                null |= np.array([x is None for x in d.v.cols[name][idx].tolist()], dtype=bool)
        if self.codes is not None and f.code_column is not None:
            bad = np.array([x is not None and x not in self.codes
                            for x in d.v.cols[f.code_column][idx].tolist()], dtype=np.bool_)
        else:
            bad = np.zeros(len(idx), dtype=bool)
        batch_max = None
        seen, keys_max, prev = self.seen, self.keys_max, self.prev_max
        for i, line in enumerate(lines):
            if mal[i]:
                c["malformed_lines"] += 1
                continue
            c["valid_records"] += 1
            t = ts[i]
            if t is not None and (batch_max is None or t > batch_max):
                batch_max = t
            digest = blake2b(line.encode(), digest_size=16).digest()
            if digest in seen:
                c["exact_duplicates"] += 1
                continue
            seen.add(digest)
            op, key = ops[i], keys[i]
            known = key is not None and key in keys_max
            newest = keys_max.get(key) if key is not None else None
            if op == "I":
                c["inserts"] += 1
                if prev is not None and t is not None and t < prev:
                    c["late_arriving"] += 1
            elif op == "U":
                c["newer_versions"] += known
                if newest is not None and t is not None and t < newest:
                    c["out_of_order"] += 1
            elif op == "D":
                c["deletes"] += 1
            c["null_required"] += int(null[i])
            c["invalid_codes"] += int(bad[i])
            if key is not None and (not known or (t is not None and (newest is None
                                                                     or t > newest))):
                keys_max[key] = t
        self.prev_max = batch_max
        return c


def assemble(seed: int | None, scale: float | None, as_of: str, batches: list, windows: dict,
             feeds: dict, demographic: dict, files: dict, drift: dict,
             null_changes: dict[str, int] | None = None) -> dict:
    """The manifest dict (``format_version`` 1) from per-feed per-batch counts (``seed`` and
    ``scale`` are None for imported data). ``null_changes`` (``{"to_null": n, "from_null": n}``)
    is written when given; a manifest extended by a later delivery keeps its earlier value."""
    totals = dict.fromkeys(KINDS, 0)
    for per_batch in feeds.values():
        for counts in per_batch.values():
            for k in KINDS:
                totals[k] += counts[k]
    totals = {"lines": totals["lines"], "records": totals["valid_records"], **totals}
    feeds_out = {name: {b: {**counts, "drift_columns": drift[name][b]}
                        for b, counts in per_batch.items()} for name, per_batch in feeds.items()}
    return {
        "format_version": FORMAT_VERSION,
        "generator": f"medilake_lab {__version__}",
        "seed": seed, "scale": scale, "as_of_date": as_of,
        "batches": batches, "batch_windows": windows,
        "feeds": feeds_out, "totals": totals,
        "demographic_changes": demographic,
        **({"null_changes": null_changes} if null_changes is not None else {}),
        "files": files,
        "definitions": {**DEFINITIONS, "records": "Sum of valid_records (totals only).",
                        "drift_columns": DRIFT_DEFINITION,
                        "demographic_changes": DEMOGRAPHIC_DEFINITION,
                        "null_changes": NULL_CHANGES_DEFINITION,
                        "files": FILES_DEFINITION},
    }
