"""What every lab's checks share, so that a lab module holds checks and explanations only.

* **Findings' words**: :func:`n`, :func:`plural`, :func:`kb`, :func:`pct`, :func:`fmt` (any value:
  null, true/false, timestamps to the second, dates, floats to 4 significant digits), :func:`days`.
* **One timestamp rule**: :func:`naive_utc` — every timestamp becomes naive UTC ``timestamp[us]``
  (the same instant), string views plain strings, so DuckDB and Python compare like with like.
* **One DuckDB connection factory**: :func:`connect` (UTC session, arrow tables registered),
  and :func:`one` for a query's single row.
* **One expected-vs-observed comparison**: :func:`compare` matches rows on their keys and returns
  a :class:`Diff`; :func:`describe` words the first differing rows. When the delivered versions of
  the records are given, a differing row that holds another delivered version of its key is named
  as such (the cause is the dedup, not the formula of the compared column).

Per-run memoisation and "require these tables or fail with the lab's hint" live on the check
context (:class:`medilake_lab.grader.context.Context`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

KIB = 1024
#: First differing rows named in a finding.
SHOWN = 2
#: The column that tells versions of a record apart (the CDC feeds' ``updated_at``).
VERSION_COLUMN = "updated_at"

# ---------------------------------------------------------------------------- words of findings


def n(value: int) -> str:
    """``12345`` → ``"12,345"``."""
    return f"{value:,d}"


def plural(count: int, noun: str) -> str:
    """``(1, "delete")`` → ``"1 delete"``, ``(3, "delete")`` → ``"3 deletes"``."""
    return f"{count:,d} {noun}{'' if count == 1 else 's'}"


def kb(size: float) -> str:
    """Bytes as kibibytes: ``2048`` → ``"2.0 KB"``."""
    return f"{size / KIB:,.1f} KB"


def pct(share: float) -> str:
    """A share in [0, 1] as a whole percentage: ``0.25`` → ``"25%"``."""
    return f"{share:.0%}"


def fmt(value: object) -> str:
    """A value as a finding shows it: ``null``, ``true``/``false``, a timestamp to the second,
    an ISO date, a float to 4 significant digits, a list/tuple as ``[a, b]``, anything else str."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (tuple, list)):
        return "[" + ", ".join(map(fmt, value)) + "]"
    return str(value)


def days(values: list) -> str:
    """Comma-separated dates of timestamps; full timestamps when two fall on the same day."""
    shown = [v.date().isoformat() if isinstance(v, datetime) else fmt(v) for v in values]
    return ", ".join(shown if len(set(shown)) == len(shown) else [fmt(v) for v in values])


def key_text(key: tuple) -> str:
    """A row key in a finding: one value as it is, several as ``(a, b)``."""
    return fmt(key[0]) if len(key) == 1 else "(" + ", ".join(fmt(k) for k in key) + ")"


# ------------------------------------------------------------------------ timestamps and DuckDB


def naive_utc(table: pa.Table) -> pa.Table:
    """The one timestamp rule of the grader: every timestamp column (any unit, with or without a
    time zone) → ``timestamp[us]`` without zone holding the UTC wall time (the same instant);
    string views and large strings → ``string``. Other columns are unchanged."""
    fields = []
    for f in table.schema:
        if pa.types.is_timestamp(f.type):
            fields.append(pa.field(f.name, pa.timestamp("us"), f.nullable))
        elif f.type == pa.string_view() or pa.types.is_large_string(f.type):
            fields.append(pa.field(f.name, pa.string(), f.nullable))
        else:
            fields.append(f)
    schema = pa.schema(fields)
    return table if schema == table.schema else table.cast(schema)


_DATABASE: list[duckdb.DuckDBPyConnection] = []


def connect(**tables: pa.Table) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection of the grader: a cursor on one shared in-memory database (cheap), with
    the session time zone UTC and each arrow table registered under its keyword name.
    Registrations, TEMP views and TEMP macros are private to the returned connection."""
    if not _DATABASE:
        _DATABASE.append(duckdb.connect())
    con = _DATABASE[0].cursor()
    con.execute("SET TimeZone = 'UTC'")
    for name, table in tables.items():
        con.register(name, table)
    return con


def one(con: duckdb.DuckDBPyConnection, sql: str) -> tuple:
    """The first row of ``sql`` run on ``con`` (e.g. ``one(con, "SELECT count(*) FROM t")[0]``).
    Raises LookupError naming the query when it returns no row (an aggregate always returns one)."""
    row = con.execute(sql).fetchone()
    if row is None:
        raise LookupError(f"DuckDB query returned no row: {sql}")
    return row


# -------------------------------------------------------------- expected vs observed comparison


def kind_of_type(dtype: pa.DataType) -> str:
    """How values of an arrow type compare: ``int``, ``double`` (within a tolerance), ``list<…>``
    (as sorted tuples) or the type's name (exact)."""
    if pa.types.is_integer(dtype):
        return "int"
    if pa.types.is_floating(dtype) or pa.types.is_decimal(dtype):
        return "double"
    if pa.types.is_list(dtype) or pa.types.is_large_list(dtype):
        return f"list<{kind_of_type(dtype.value_type)}>"
    return str(dtype)


def _norm(value: object, kind: str) -> object:
    if value is None:
        return None
    if kind == "int":
        return int(value)  # type: ignore[call-overload]
    if kind == "double":
        return float(value)  # type: ignore[arg-type]
    if kind.startswith("list"):
        return tuple(sorted(value))  # type: ignore[call-overload]
    return value


def _same(observed: object, expected: object, kind: str, rel_tol: float) -> bool:
    if observed is None or expected is None:
        return observed is None and expected is None
    if kind == "double":
        o, e = float(observed), float(expected)  # type: ignore[arg-type]
        if math.isnan(o) or math.isnan(e):
            return False
        return math.isclose(o, e, rel_tol=rel_tol, abs_tol=1e-9)
    return observed == expected


def _sort_key(key: tuple) -> tuple:
    return tuple((v is None, str(v)) for v in key)


@dataclass
class Diff:
    """Observed vs expected rows of one table, matched on its keys.

    ``rows``: expected rows; ``duplicates``: observed rows whose key was already seen;
    ``missing``/``extra``: expected keys not observed / observed keys not expected (key order);
    ``columns``: column → ``[(key, observed, expected)]`` for rows on both sides that differ;
    ``observed``/``expected``: key → the row's values (all columns read), for explanations;
    ``other_version``: key → ``(observed version, newest version)`` (values of
    :data:`VERSION_COLUMN`) for differing rows that hold another delivered version of the record.
    """

    table: str
    keys: tuple[str, ...]
    rows: int
    duplicates: int = 0
    missing: list[tuple] = field(default_factory=list)
    extra: list[tuple] = field(default_factory=list)
    columns: dict[str, list[tuple[tuple, object, object]]] = field(default_factory=dict)
    observed: Mapping[tuple, dict[str, object]] = field(default_factory=dict)
    expected: Mapping[tuple, dict[str, object]] = field(default_factory=dict)
    other_version: dict[tuple, tuple[object, object]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when nothing differs."""
        return not (self.duplicates or self.missing or self.extra or any(self.columns.values()))

    def differing(self, column: str, *, same_version: bool = False) -> list[tuple[tuple, object, object]]:
        """The ``(key, observed, expected)`` triples of a column; with ``same_version`` only those
        whose row is not another version of the record (so the column's own rule is at fault)."""
        bad = self.columns.get(column, [])
        return [t for t in bad if t[0] not in self.other_version] if same_version else bad


def _values(column: pa.ChunkedArray, kind: str) -> list:
    """A column's values as :func:`_norm` gives them, converted column by column (``_norm`` is
    the identity for exact kinds, and for ints and doubles already of an arrow int/float type)."""
    values = column.to_pylist()
    if kind == "int" and pa.types.is_integer(column.type) or kind == "double" and pa.types.is_floating(column.type):
        return values
    if kind in ("int", "double") or kind.startswith("list"):
        return [_norm(v, kind) for v in values]
    return values


def _rows(table: pa.Table, keys: tuple[str, ...], kinds: dict[str, str]
          ) -> tuple[dict[tuple, dict[str, object]], int]:
    names = table.column_names
    position = {name: i for i, name in enumerate(names)}
    at = [position[k] for k in keys]
    out: dict[tuple, dict[str, object]] = {}
    duplicates = 0
    for row in zip(*(_values(table.column(i), kinds.get(c, "")) for i, c in enumerate(names)), strict=True):
        key = tuple(row[i] for i in at)
        if key in out:
            duplicates += 1
            continue
        out[key] = dict(zip(names, row, strict=True))
    return out, duplicates


def compare(name: str, observed: pa.Table, expected: pa.Table, keys: Iterable[str],
            columns: list[str], *, kinds: dict[str, str] | None = None, rel_tol: float = 0.0,
            versions: pa.Table | None = None) -> Diff:
    """Match observed and expected rows on ``keys`` and compare ``columns``.

    Parameters
    ----------
    name: the table's ``schema.table`` name (for findings).
    observed, expected: the rows (both hold the keys and ``columns``; other columns are kept for
        explanations). Timestamps should follow :func:`naive_utc`.
    keys: the columns that identify a row.
    columns: the value columns compared.
    kinds: column → comparison kind (see :func:`kind_of_type`); default from the expected types.
        Integers compare exactly, doubles within ``rel_tol`` (relative), lists sorted.
    versions: optional delivered versions of the records (one row per delivered version, holding
        the keys, :data:`VERSION_COLUMN` and other columns of ``observed``). A differing observed
        row whose other shared columns equal a delivered version other than the expected one is
        recorded in :attr:`Diff.other_version`.

    Returns
    -------
    Diff, with missing/extra keys and differing triples in key order.
    """
    keys = tuple(keys)
    kinds = {f.name: kind_of_type(f.type) for f in expected.schema} | (kinds or {})
    if _identical(observed, expected, keys, columns):  # the common case, without a dict per row
        return Diff(name, keys, expected.num_rows, columns={c: [] for c in columns},
                    observed=_LazyRows(observed, keys, kinds), expected=_LazyRows(expected, keys, kinds))
    got, duplicates = _rows(observed, keys, kinds)
    want, _ = _rows(expected, keys, kinds)
    diff = Diff(name, keys, len(want), duplicates, observed=got, expected=want)
    order = sorted(want, key=_sort_key)
    diff.missing = [k for k in order if k not in got]
    diff.extra = sorted((k for k in got if k not in want), key=_sort_key)
    for column in columns:
        diff.columns[column] = [
            (k, got[k][column], want[k][column]) for k in order
            if k in got and not _same(got[k][column], want[k][column], kinds[column], rel_tol)]
    if versions is not None:
        diff.other_version = _other_versions(diff, versions, columns, kinds)
    return diff


class _LazyRows(Mapping[tuple, dict[str, object]]):
    """key → row values of a table, as :func:`_rows` gives them, built on first use (a
    :class:`Diff` of identical tables rarely needs them)."""

    def __init__(self, table: pa.Table, keys: tuple[str, ...], kinds: dict[str, str]) -> None:
        self._source: tuple | None = (table, keys, kinds)
        self._built: dict[tuple, dict[str, object]] = {}

    def _rows(self) -> dict[tuple, dict[str, object]]:
        if self._source is not None:
            self._built, self._source = _rows(*self._source)[0], None
        return self._built

    def __getitem__(self, key: tuple) -> dict[str, object]:
        return self._rows()[key]

    def __iter__(self) -> Iterator[tuple]:
        return iter(self._rows())

    def __len__(self) -> int:
        return len(self._rows())


#: Arrow type families whose values :func:`_same` compares alike, so a cast within one keeps equality.
_FAMILIES = (pa.types.is_integer, pa.types.is_floating, pa.types.is_string, pa.types.is_large_string)


def _identical(observed: pa.Table, expected: pa.Table, keys: tuple[str, ...], columns: list[str]) -> bool:
    """True when ``observed`` and ``expected`` hold the same rows in ``keys`` and ``columns``, each
    key once, sorted alike and equal value for value (NaN never): then :func:`compare` would find
    nothing, so it may skip its row-by-row work. False whenever that is not certain (types of
    different families, unsortable keys, NaN, duplicate keys); the row-by-row path then decides."""
    names = list(dict.fromkeys([*keys, *columns]))
    if observed.num_rows != expected.num_rows or not set(names) <= set(observed.column_names) \
            or not set(names) <= set(expected.column_names):
        return False
    try:
        order = [(k, "ascending") for k in keys]
        want = expected.select(names).take(pc.sort_indices(expected.select(list(keys)), sort_keys=order))
        got = observed.select(names).take(pc.sort_indices(observed.select(list(keys)), sort_keys=order))
        if not _unique_sorted(want, keys):
            return False  # duplicate keys: compare counts and names them
        for name in names:
            w, g = want.column(name), got.column(name)
            if g.type != w.type:
                if not any(family(g.type) and family(w.type) for family in _FAMILIES):
                    return False
                g = pc.cast(g, w.type, safe=True)
            if pa.types.is_floating(w.type) and pc.any(pc.is_nan(w)).as_py():
                return False
            if not g.equals(w):
                return False
    except (pa.ArrowException, ValueError, TypeError):
        return False
    return True


def _unique_sorted(table: pa.Table, keys: tuple[str, ...]) -> bool:
    """True when no two rows of ``table``, sorted by ``keys``, have the same key (NULL counts as a
    value, equal to NULL): after sorting, equal keys sit side by side, so comparing each row with
    the next is enough. (``Table.group_by`` would do it through Acero, whose import pulls in
    pyarrow.dataset and pandas: about 0.8 s per grading process.)"""
    if table.num_rows < 2:
        return True
    same_as_next = None
    for key in keys:
        column = table.column(key)
        this, after = column.slice(0, table.num_rows - 1), column.slice(1)
        equal = pc.fill_null(pc.equal(this, after), pc.and_(pc.is_null(this), pc.is_null(after)))
        same_as_next = equal if same_as_next is None else pc.and_(same_as_next, equal)
    return not pc.any(same_as_next).as_py()


def _other_versions(diff: Diff, versions: pa.Table, compared: list[str],
                    kinds: dict[str, str]) -> dict[tuple, tuple[object, object]]:
    """Differing keys whose observed row is another delivered version than the expected one."""
    bad = {k for triples in diff.columns.values() for k, _, _ in triples}
    if not bad or VERSION_COLUMN not in versions.column_names:
        return {}
    some = next(iter(diff.observed.values()))
    shared = [c for c in versions.column_names
              if c in some and c not in diff.keys and c not in compared and c != VERSION_COLUMN]
    if len(diff.keys) == 1:
        wanted = pa.array(sorted(k[0] for k in bad), type=versions.schema.field(diff.keys[0]).type)
        versions = versions.filter(pc.is_in(versions[diff.keys[0]], value_set=wanted))
    by_key: dict[tuple, list[dict[str, object]]] = {}
    for row in versions.select([*diff.keys, VERSION_COLUMN, *shared]).to_pylist():
        key = tuple(_norm(row[k], kinds.get(k, "")) for k in diff.keys)
        if key in bad:
            by_key.setdefault(key, []).append(row)
    found = {}
    for key in sorted(bad, key=_sort_key):
        have, want = diff.observed[key], diff.expected[key].get(VERSION_COLUMN)
        for version in by_key.get(key, []):
            if version[VERSION_COLUMN] != want and all(
                    _same(have.get(c), _norm(version[c], kinds.get(c, "")), kinds.get(c, ""), 1e-9)
                    for c in shared):
                found[key] = (version[VERSION_COLUMN], want)
                break
    return found


def version_cause(diff: Diff, record: str, dedup_check: str) -> str:
    """Why rows differ when they hold another version of the record (else ""), e.g. ``"12 of them
    hold another delivered version, e.g. encounter ENC1 holds the version updated 2025-03-01
    08:00:00, not the newest (2025-03-04 10:00:00) — the dedup keeps the wrong version;
    02.latest_wins explains"``."""
    if not diff.other_version:
        return ""
    key, (have, newest) = next(iter(diff.other_version.items()))
    older = isinstance(have, datetime) and isinstance(newest, datetime) and have < newest
    age = "an older" if older else "another"
    return (f"{plural(len(diff.other_version), 'row')} hold {age} delivered version of the record, "
            f"e.g. {record} {key_text(key)} holds the version updated {fmt(have)}, not the newest "
            f"({fmt(newest)}) — the dedup keeps the wrong version; {dedup_check} explains")


def describe(diff: Diff, explain: Callable[[str, list], str] | None = None) -> str:
    """A one-line finding for a :class:`Diff`: ``"<table>: <what differs>, e.g. <key> observed <x>,
    expected <y>; … — <reasons>"``, naming the first :data:`SHOWN` differing rows of each part.
    ``explain(column, differing triples)`` may recognise a known mistake and return its reason
    (else "")."""
    parts = []
    if diff.duplicates:
        parts.append(f"{diff.duplicates} duplicate key(s) {diff.keys}")
    if diff.missing:
        parts.append(f"{len(diff.missing)} expected row(s) missing, e.g. "
                     + ", ".join(key_text(k) for k in diff.missing[:SHOWN]))
    if diff.extra:
        parts.append(f"{len(diff.extra)} unexpected row(s), e.g. "
                     + ", ".join(key_text(k) for k in diff.extra[:SHOWN]))
    reasons: list[str] = []
    for column, bad in diff.columns.items():
        if not bad:
            continue
        shown = ", ".join(f"{key_text(k)} observed {fmt(o)}, expected {fmt(e)}" for k, o, e in bad[:SHOWN])
        parts.append(f"{column} differs on {len(bad)} of {diff.rows} rows: {shown}")
        why = explain(column, bad) if explain else ""
        if why and why not in reasons:
            reasons.append(why)
    return f"{diff.table}: " + "; ".join(parts) + "".join(f" — {why}" for why in reasons)
