"""Read-only reader of Spark Structured Streaming checkpoints (no JVM): what lab 05 grades from.

Layout of one query's checkpoint folder, as Spark 4.x writes it (apache/spark,
``sql/core/.../execution/streaming``: ``StreamMetadata``, ``HDFSMetadataLog``, ``OffsetSeqLog``,
``CommitLog``, ``CompactibleFileStreamLog``, ``FileStreamSourceLog``)::

    metadata             {"id": "<query id>"} — made when the query first starts, kept across
                         restarts; Delta's streaming sink logs it as the commit's queryId
    offsets/<b>          OffsetSeqLog, written before micro-batch <b> runs: "v1", then the
                         OffsetSeqMetadata JSON (batchWatermarkMs, batchTimestampMs, conf), then
                         one line per source: its end offset as JSON ("-" when none)
    commits/<b>          CommitLog, written when micro-batch <b> is done: "v1", then
                         {"nextBatchWatermarkMs": …}
    sources/<i>/<b>      FileStreamSourceLog of file source <i>: "v1", then one FileEntry JSON per
                         file read in micro-batch <b>: {"path", "timestamp", "batchId"}. Every
                         compactInterval (default 10) batches, batch <b> with (b + 1) % 10 == 0
                         is written as "<b>.compact" holding every entry so far; the files before
                         it may be deleted later. A Delta source keeps no sources log.
    state/…              state store of stateful operators (not read here)

Each log file is named by its batch id; Spark writes it under a temporary name and renames it
(names that are not a batch id, such as ``.0.crc`` or ``.<uuid>.tmp``, are ignored). Every
damaged file raises :class:`medilake_lab.errors.CheckpointError` naming it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from medilake_lab.errors import CheckpointError

M = TypeVar("M", bound=BaseModel)
COMPACT_SUFFIX = ".compact"
VOID_OFFSET = "-"


class StreamMetadata(BaseModel):
    """``metadata``: the query id."""

    model_config = ConfigDict(extra="allow")
    id: str


class OffsetMetadata(BaseModel):
    """Second line of ``offsets/<b>``: event-time watermark and trigger time of the micro-batch
    (milliseconds since the epoch, UTC) and the session confs the query keeps."""

    model_config = ConfigDict(extra="allow")
    batchWatermarkMs: int = 0  # noqa: N815 - Spark's field name
    batchTimestampMs: int = 0  # noqa: N815
    conf: dict[str, str] = {}


class CommitMetadata(BaseModel):
    """``commits/<b>``: the watermark the next micro-batch starts from (ms since the epoch)."""

    model_config = ConfigDict(extra="allow")
    nextBatchWatermarkMs: int = 0  # noqa: N815


class FileEntry(BaseModel):
    """One file a file source read: ``path`` (a URI, e.g. ``file:///…/x.json.gz``), its
    modification ``timestamp`` (ms) and the micro-batch (``batchId``) that read it."""

    model_config = ConfigDict(extra="allow")
    path: str
    timestamp: int
    batchId: int  # noqa: N815

    @property
    def name(self) -> str:
        """The file name, e.g. ``encounters_004.json.gz``."""
        return PurePosixPath(self.path).name

    @property
    def folder(self) -> str:
        """The name of the folder holding the file, e.g. ``encounters`` (the feed)."""
        return PurePosixPath(self.path).parent.name


@dataclass(frozen=True)
class Offsets:
    """One ``offsets/<b>`` file: its metadata and each source's end offset (parsed JSON, None
    for ``-``)."""

    metadata: OffsetMetadata
    sources: tuple[object, ...]


@dataclass
class Checkpoint:
    """One query's checkpoint: ``query_id``, ``offsets`` and ``commits`` by batch id, and
    ``files`` (the entries of ``sources/0``, one per distinct (batchId, path), in batch order)."""

    path: Path
    query_id: str
    offsets: dict[int, Offsets] = field(default_factory=dict)
    commits: dict[int, CommitMetadata] = field(default_factory=dict)
    files: list[FileEntry] = field(default_factory=list)

    @property
    def committed(self) -> list[int]:
        """Batch ids of the committed micro-batches, ascending."""
        return sorted(self.commits)

    @property
    def last_committed(self) -> int | None:
        """The last committed micro-batch id, or None before the first commit."""
        return max(self.commits) if self.commits else None

    def watermark(self, batch: int) -> int:
        """The event-time watermark micro-batch ``batch`` ran with (``batchWatermarkMs`` of its
        offsets, ms since the epoch); 0 for a batch without an offsets file (none yet)."""
        offsets = self.offsets.get(batch)
        return offsets.metadata.batchWatermarkMs if offsets else 0

    def had_input(self, batch: int) -> bool:
        """True when micro-batch ``batch`` read new input: its source offsets differ from the
        previous micro-batch's (a no-data batch, which only moves the watermark, repeats them).
        The first micro-batch and one whose previous offsets are unknown count as input."""
        this, before = self.offsets.get(batch), self.offsets.get(batch - 1)
        return this is None or before is None or this.sources != before.sources

    def files_of(self, batch: int) -> list[FileEntry]:
        """Files micro-batch ``batch`` read (empty for a Delta source or a no-data batch)."""
        return [f for f in self.files if f.batchId == batch]


def _batch_files(folder: Path) -> list[tuple[int, Path]]:
    """(batch id, file) of a log folder, by batch id; other names are Spark's temporary or
    checksum files."""
    if not folder.is_dir():
        return []
    found = []
    for path in folder.iterdir():
        stem = path.name.removesuffix(COMPACT_SUFFIX)
        if stem.isdigit() and path.is_file():
            found.append((int(stem), path))
    return sorted(found)


def _lines(path: Path) -> list[str]:
    """The lines of one log file after its version line (``v1``). Raises CheckpointError."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CheckpointError(path, f"cannot be read ({exc})") from exc
    lines = text.split("\n")
    head = lines[0].strip()
    if not (head.startswith("v") and head[1:].isdigit()):
        raise CheckpointError(path, f"does not start with a log version line like 'v1' (found {head[:40]!r})")
    return lines[1:]


def _model(model: type[M], text: str, path: Path) -> M:
    try:
        return model.model_validate_json(text)
    except ValidationError as exc:
        errors = exc.errors()
        if errors[0].get("type") == "json_invalid":
            raise CheckpointError(path, f"holds a line that is not JSON: {text[:80]!r}") from exc
        what = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ())) or 'the line'}: {e.get('msg')}"
                         for e in errors[:3])
        raise CheckpointError(path, f"is damaged: {what} (line {text[:80]!r})") from exc


def _json(text: str, path: Path) -> object:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise CheckpointError(path, f"holds a line that is not JSON: {text[:80]!r}") from exc


def _offsets(path: Path) -> Offsets:
    lines = _lines(path)
    if not lines or not lines[0].strip():
        raise CheckpointError(path, "has no offset metadata line (an incomplete offsets file)")
    metadata = _model(OffsetMetadata, lines[0], path)
    sources = tuple(None if line.strip() == VOID_OFFSET else _json(line, path)
                    for line in lines[1:] if line.strip())
    return Offsets(metadata, sources)


def _commit(path: Path) -> CommitMetadata:
    lines = [line for line in _lines(path) if line.strip()]
    if not lines:
        raise CheckpointError(path, "has no commit metadata line (an incomplete commit file)")
    return _model(CommitMetadata, lines[0], path)


def _entries(folder: Path) -> list[FileEntry]:
    """Every distinct (batchId, path) of a file source log, compact files included."""
    seen: dict[tuple[int, str], FileEntry] = {}
    for _, path in _batch_files(folder):
        for line in _lines(path):
            if line.strip():
                entry = _model(FileEntry, line, path)
                seen.setdefault((entry.batchId, entry.path), entry)
    return sorted(seen.values(), key=lambda e: (e.batchId, e.path))


def read_checkpoint(path: str | os.PathLike) -> Checkpoint:
    """Read a query's checkpoint folder (layout in the module docstring).

    Returns
    -------
    Checkpoint: query id, offsets and commits per batch id, files of ``sources/0``.

    Raises
    ------
    CheckpointError: the folder or its ``metadata`` is missing, or a log file is damaged (not
        UTF-8, no version line, a line that is not the JSON Spark writes); names the file.
    """
    root = Path(path)
    meta = root / "metadata"
    if not meta.is_file():
        raise CheckpointError(meta, "is missing (no streaming query has used this checkpoint)")
    try:
        query = StreamMetadata.model_validate_json(meta.read_text(encoding="utf-8").strip() or "{}")
    except (OSError, UnicodeDecodeError, ValidationError) as exc:
        raise CheckpointError(meta, f"is damaged: {str(exc).splitlines()[0]}") from exc
    return Checkpoint(root, query.id,
                      {b: _offsets(p) for b, p in _batch_files(root / "offsets")},
                      {b: _commit(p) for b, p in _batch_files(root / "commits")},
                      _entries(root / "sources" / "0"))
