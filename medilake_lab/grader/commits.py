"""What a Delta commit means: its kind, save mode, metrics and parameters, decided in one place.

A :class:`Commit` is one ``DESCRIBE HISTORY`` row as :meth:`medilake_lab.grader.delta.Table.history`
reads it from the log (delta-rs, no JVM). The operation names are those Delta Lake 4.x writes
(``DeltaOperations.scala``): ``WRITE``, ``STREAMING UPDATE``, ``CREATE TABLE [AS SELECT]``,
``[CREATE OR ]REPLACE TABLE [AS SELECT]``, ``MERGE``, ``UPDATE``, ``DELETE``, ``TRUNCATE``,
``OPTIMIZE``, ``REORG``, ``VACUUM START``/``END``, ``RESTORE``, ``CLONE``, ``SET``/``UNSET
TBLPROPERTIES``, the schema changes (``ADD COLUMNS``, ``CHANGE COLUMN``…) and a few metadata-only
ones (constraints, protocol, features, ``CLUSTER BY``…).

Spark stores ``operationParameters`` as JSON-encoded strings, and writers differ (``"Append"`` or
``"\\"Append\\""``; ``"[\\"patient_id\\"]"`` for a list; ``true``/``"true"``); the accessors here
decode them once. A commit's ``userMetadata`` (``spark.databricks.delta.commitInfo.userMetadata``) is
kept; lab 07's erasure commits carry ``erasure:<request_id>`` (:attr:`Commit.erasure_request`).
The predicates the labs judge with:

=====================  =============================================================================
``is_append``          a blind append: rows added, nothing read or removed (WRITE in Append mode,
                       streaming Append) — delta-rs' ``is_blind_append``
``only_adds``          no existing row is changed or removed: appends, table creation (with or
                       without AS SELECT), table-property changes and schema changes that keep
                       every column (not DROP/RENAME/REPLACE COLUMNS)
``rewrites_data``      the table afterwards holds only what this commit wrote (or nothing): an
                       overwrite (also ``replaceWhere``/dynamic partition overwrite: a slice is
                       replaced wholesale, not merged), CREATE [OR REPLACE]/REPLACE TABLE with or
                       without AS SELECT, TRUNCATE, a streaming Complete. A new physical layout
                       starts there
``changes_data``       Delta's own ``changesData``: rows added, changed or removed (writes, DML,
                       AS SELECT, REPLACE, RESTORE, CLONE); OPTIMIZE, VACUUM and metadata do not
``is_destructive``     changes or removes existing rows: overwrite, REPLACE, MERGE, UPDATE, DELETE,
                       TRUNCATE (what a RESTORE may be undoing)
``is_bookkeeping``     neither rows nor the current files change: VACUUM START/END and table
                       properties (a RESTORE may step over them without undoing anything)
``is_maintenance``     no row is added, changed or removed (files, properties or protocol only):
                       OPTIMIZE, REORG … APPLY (PURGE), VACUUM START/END, SET/UNSET TBLPROPERTIES and
                       the metadata commits (DROP FEATURE and the "Deletion Vector Tombstones" and
                       "Empty Commit" commits it writes first, constraints, protocol upgrades…)
``is_streaming``       written by a streaming query's Delta sink (STREAMING UPDATE, any output
                       mode), with its ``query_id`` and ``output_mode``
=====================  =============================================================================
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum

_MS_PER_HOUR = 3_600_000


class Kind(StrEnum):
    """The meaning of a commit, independent of how its writer spelled it."""

    APPEND = "append"                        #: WRITE mode Append (or ErrorIfExists/Ignore); streaming Append
    OVERWRITE = "overwrite"                  #: WRITE mode Overwrite (incl. replaceWhere); streaming Complete
    CREATE = "create"                        #: CREATE TABLE without data
    CREATE_AS_SELECT = "create as select"    #: CREATE TABLE AS SELECT
    REPLACE = "replace"                      #: [CREATE OR ]REPLACE TABLE without a query: emptied
    REPLACE_AS_SELECT = "replace as select"  #: [CREATE OR ]REPLACE TABLE AS SELECT
    MERGE = "merge"
    UPDATE = "update"
    DELETE = "delete"
    TRUNCATE = "truncate"
    STREAMING_UPDATE = "streaming update"    #: STREAMING UPDATE in Update output mode
    OPTIMIZE = "optimize"                    #: OPTIMIZE [ZORDER BY], auto compaction
    REORG = "reorg"                          #: REORG TABLE … APPLY (PURGE): files rewritten, rows kept
    VACUUM_START = "vacuum start"
    VACUUM_END = "vacuum end"
    RESTORE = "restore"
    CLONE = "clone"
    SET_PROPERTIES = "set properties"        #: SET / UNSET TBLPROPERTIES
    SCHEMA_CHANGE = "schema change"          #: ADD/CHANGE/REPLACE/DROP/RENAME COLUMN(S), UPDATE SCHEMA
    METADATA = "metadata"                    #: constraints, protocol, features (DROP FEATURE…), clustering
    OTHER = "other"                          #: CONVERT, FSCK and names this kit does not know


_BY_OPERATION: dict[str, Kind] = {
    "CREATE TABLE": Kind.CREATE, "CREATE TABLE AS SELECT": Kind.CREATE_AS_SELECT,
    "REPLACE TABLE": Kind.REPLACE, "CREATE OR REPLACE TABLE": Kind.REPLACE,
    "REPLACE TABLE AS SELECT": Kind.REPLACE_AS_SELECT,
    "CREATE OR REPLACE TABLE AS SELECT": Kind.REPLACE_AS_SELECT,
    "MERGE": Kind.MERGE, "UPDATE": Kind.UPDATE, "DELETE": Kind.DELETE, "TRUNCATE": Kind.TRUNCATE,
    "OPTIMIZE": Kind.OPTIMIZE, "REORG": Kind.REORG,
    "VACUUM START": Kind.VACUUM_START, "VACUUM END": Kind.VACUUM_END,
    "RESTORE": Kind.RESTORE, "CLONE": Kind.CLONE,
    "SET TBLPROPERTIES": Kind.SET_PROPERTIES, "UNSET TBLPROPERTIES": Kind.SET_PROPERTIES,
    **dict.fromkeys(("ADD COLUMNS", "CHANGE COLUMN", "CHANGE COLUMNS", "REPLACE COLUMNS",
                     "DROP COLUMNS", "RENAME COLUMN", "UPDATE SCHEMA",
                     "UPDATE COLUMN METADATA"), Kind.SCHEMA_CHANGE),
    **dict.fromkeys(("ADD CONSTRAINT", "DROP CONSTRAINT", "UPGRADE PROTOCOL", "DROP FEATURE",
                     "CLUSTER BY", "COMPUTE STATS", "ADD DELETION VECTORS TOMBSTONES",
                     "Deletion Vector Tombstones", "REORG TABLE UPGRADE UNIFORM", "Manual Update",
                     "Empty Commit"), Kind.METADATA),
}

_ONLY_ADDS = frozenset({Kind.APPEND, Kind.CREATE, Kind.CREATE_AS_SELECT, Kind.SET_PROPERTIES,
                        Kind.SCHEMA_CHANGE})
_REWRITES = frozenset({Kind.OVERWRITE, Kind.CREATE, Kind.CREATE_AS_SELECT, Kind.REPLACE,
                       Kind.REPLACE_AS_SELECT, Kind.TRUNCATE})
_CHANGES_DATA = frozenset({Kind.APPEND, Kind.OVERWRITE, Kind.CREATE_AS_SELECT, Kind.REPLACE,
                           Kind.REPLACE_AS_SELECT, Kind.MERGE, Kind.UPDATE, Kind.DELETE, Kind.TRUNCATE,
                           Kind.STREAMING_UPDATE, Kind.RESTORE, Kind.CLONE})
_DESTRUCTIVE = frozenset({Kind.OVERWRITE, Kind.REPLACE, Kind.REPLACE_AS_SELECT, Kind.MERGE,
                          Kind.UPDATE, Kind.DELETE, Kind.TRUNCATE})
_BOOKKEEPING = frozenset({Kind.VACUUM_START, Kind.VACUUM_END, Kind.SET_PROPERTIES})
_MAINTENANCE = frozenset({Kind.OPTIMIZE, Kind.REORG, Kind.VACUUM_START, Kind.VACUUM_END, Kind.SET_PROPERTIES,
                          Kind.METADATA})
#: The ``userMetadata`` prefix of lab 07's erasure commits: ``erasure:<request_id>``.
ERASURE_PREFIX = "erasure:"
#: Schema changes that take existing column values away (not ``only_adds``).
_REMOVES_COLUMNS = frozenset({"DROP COLUMNS", "RENAME COLUMN", "REPLACE COLUMNS"})


def decode(value: object) -> object:
    """One operation parameter as its JSON value: ``'"Append"'`` → ``"Append"``, ``'["a"]'`` →
    ``["a"]``, ``"true"`` → ``True``, ``"604800000"`` → ``604800000``; text that is not JSON (an
    unquoted ``Append``, a predicate) comes back unchanged; None stays None."""
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


def kind_of(operation: str, parameters: dict[str, str]) -> Kind:
    """The :class:`Kind` of a commit from its operation name and (raw) parameters."""
    if operation == "WRITE":
        mode = str(decode(parameters.get("mode")) or "Append")
        return Kind.OVERWRITE if mode.lower() == "overwrite" else Kind.APPEND
    if operation == "STREAMING UPDATE":
        output = str(decode(parameters.get("outputMode")) or "Append").lower()
        return {"append": Kind.APPEND, "complete": Kind.OVERWRITE}.get(output, Kind.STREAMING_UPDATE)
    return _BY_OPERATION.get(operation, Kind.OTHER)


@dataclass(frozen=True)
class Commit:
    """One DESCRIBE HISTORY row: ``version``, ``operation`` (e.g. ``"WRITE"``, ``"MERGE"``),
    ``parameters`` (operationParameters, as stored: strings, often JSON-encoded), ``metrics``
    (operationMetrics, strings of integers) and ``user_metadata`` (the commit's userMetadata)."""

    version: int
    operation: str
    parameters: dict[str, str]
    metrics: dict[str, str]
    timestamp_ms: int | None = None  #: commit time, milliseconds since the epoch (UTC)
    user_metadata: str | None = None  #: ``userMetadata`` of the commit (None when it has none)

    @property
    def kind(self) -> Kind:
        """What the commit did (see :class:`Kind`)."""
        return kind_of(self.operation, self.parameters)

    @property
    def mode(self) -> str:
        """The save mode of a WRITE, unquoted (``"Append"``, ``"Overwrite"``), else ``""``."""
        return str(decode(self.parameters.get("mode")) or "")

    def param(self, name: str) -> object:
        """An operation parameter decoded from JSON (see :func:`decode`); None when absent."""
        return decode(self.parameters.get(name))

    def list_param(self, name: str) -> list[str]:
        """A list parameter (``zOrderBy``, ``partitionBy``, ``clusterBy``) as column names; ``[]``
        when absent or empty."""
        value = self.param(name)
        if value in (None, ""):
            return []
        if isinstance(value, str):  # a writer that did not JSON-encode: "[a, b]" or "a"
            value = [v.strip(" '\"") for v in value.strip("[]").split(",") if v.strip(" '\"")]
        return [str(v) for v in value] if isinstance(value, list) else [str(value)]

    def metric(self, name: str) -> int:
        """An operation metric as an int (``numTargetRowsUpdated``, ``numAddedFiles``…); 0 when
        absent or not a number."""
        try:
            return int(float(self.metrics.get(name) or 0))
        except ValueError:
            return 0

    @property
    def erasure_request(self) -> str | None:
        """The request id of an erasure commit (userMetadata ``erasure:<request_id>``, spaces
        around the id ignored); None for any other commit."""
        text = (self.user_metadata or "").strip()
        if not text.startswith(ERASURE_PREFIX):
            return None
        return text.removeprefix(ERASURE_PREFIX).strip() or None

    @property
    def predicate(self) -> str:
        """The ``predicate`` parameter (DELETE, UPDATE, MERGE, OPTIMIZE…) as one text, several
        joined with `` AND ``; ``""`` when absent. Spark logs column references with ids and string
        literals bare: ``(patient_id#506 = PAT000123)``."""
        value = self.param("predicate")
        if isinstance(value, list):
            return " AND ".join(str(v) for v in value)
        return "" if value is None else str(value)

    @property
    def is_streaming(self) -> bool:
        """Written by a streaming query's Delta sink (``STREAMING UPDATE``: ``writeStream`` …
        ``toTable``/``start``), not by a batch job; ``foreachBatch`` commits are the batch
        operations its function runs (MERGE…)."""
        return self.operation == "STREAMING UPDATE"

    @property
    def query_id(self) -> str | None:
        """A streaming commit's ``queryId`` (the id in its checkpoint's ``metadata`` file, kept
        across restarts from the same checkpoint); None for other commits."""
        value = self.param("queryId") if self.is_streaming else None
        return None if value in (None, "") else str(value)

    @property
    def output_mode(self) -> str:
        """A streaming commit's output mode, unquoted (``"Append"``, ``"Complete"``,
        ``"Update"``); ``""`` for other commits."""
        return str(self.param("outputMode") or "") if self.is_streaming else ""

    @property
    def retention_hours(self) -> float | None:
        """VACUUM START: the retention it used in hours (specified, else the table's default);
        None for other commits or when the log does not say."""
        if self.kind is not Kind.VACUUM_START:
            return None
        raw = self.param("specifiedRetentionMillis")
        if raw in (None, "", "None"):
            raw = self.param("defaultRetentionMillis")
        try:
            return float(raw) / _MS_PER_HOUR  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return None

    @property
    def retention_check_enabled(self) -> bool:
        """VACUUM START: False when ``spark.databricks.delta.retentionDurationCheck.enabled`` was
        off (a retention under the table's default was allowed); True otherwise."""
        return str(self.param("retentionCheckEnabled")).lower() != "false"

    @property
    def is_append(self) -> bool:
        """A blind append (see the module table)."""
        return self.kind is Kind.APPEND

    @property
    def only_adds(self) -> bool:
        """No existing row is changed or removed (see the module table); a schema change that drops,
        renames or replaces columns takes existing values away, so it does not count."""
        return self.kind in _ONLY_ADDS and self.operation not in _REMOVES_COLUMNS

    @property
    def rewrites_data(self) -> bool:
        """The table afterwards holds only what this commit wrote (see the module table)."""
        return self.kind in _REWRITES

    @property
    def changes_data(self) -> bool:
        """Rows added, changed or removed — Delta's ``changesData`` (see the module table)."""
        return self.kind in _CHANGES_DATA

    @property
    def is_destructive(self) -> bool:
        """Existing rows changed or removed (see the module table)."""
        return self.kind in _DESTRUCTIVE

    @property
    def is_bookkeeping(self) -> bool:
        """Neither rows nor current files change (see the module table)."""
        return self.kind in _BOOKKEEPING

    @property
    def is_maintenance(self) -> bool:
        """No row is added, changed or removed: files, properties or protocol only (see the module
        table)."""
        return self.kind in _MAINTENANCE

    def describe(self) -> str:
        """Short label, e.g. ``"v3 WRITE (mode=Overwrite)"``."""
        return f"v{self.version} {self.operation}" + (f" (mode={self.mode})" if self.mode else "")

    def describe_vacuum(self) -> str:
        """Label of a VACUUM START, e.g. ``"v7 VACUUM START: retention 168 h, retention check on"``."""
        hours = self.retention_hours
        shown = "unknown" if hours is None else f"{hours:g} h"
        return (f"v{self.version} VACUUM START: retention {shown}, retention check "
                f"{'on' if self.retention_check_enabled else 'disabled'}")
