"""Reading a Synthea CSV export: the six files, their columns across versions, typed values.

Synthea's CSV exporter has changed its columns over the years (v3.0 has no ``MIDDLE``, ``FIPS``
or ``INCOME`` in ``patients.csv`` and no ``SYSTEM`` in ``conditions.csv`` / ``procedures.csv``;
v3.1+ has them; v2 exports name the procedure time ``DATE`` instead of ``START``). Files are
read with the standard :mod:`csv` module; header names are matched case-insensitively, unknown
columns are ignored, and only the columns listed in :data:`SPECS` are required.

Values come back as ``None`` (empty field), ``str``, ``datetime`` (timezone-aware UTC, whole
seconds) for timestamp columns or ``date`` for date columns.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

from medilake_lab.errors import SyntheaFormatError


@dataclass(frozen=True)
class CsvSpec:
    """What the importer needs from one Synthea CSV file.

    Attributes
    ----------
    file: file name inside the export folder, e.g. ``"patients.csv"``.
    required: canonical (upper-case) column names that must be present; an entry
        ``"START|DATE"`` accepts either header (older exports), read as the first name.
    optional: columns used when present (absent in some Synthea versions).
    timestamps: columns parsed as ISO-8601 instants (a bare date means midnight UTC).
    dates: columns parsed as ISO-8601 dates (a timestamp keeps its UTC date).
    identity: columns hashed into the stable id of a row that has no ``Id`` of its own; the same
        in every Synthea version, so an id does not change when the export adds columns.
    nonempty: columns every row must fill (keys and event times): an empty one is an error.
    """

    file: str
    required: tuple[str, ...]
    optional: tuple[str, ...] = ()
    timestamps: tuple[str, ...] = ()
    dates: tuple[str, ...] = ()
    identity: tuple[str, ...] = ()
    nonempty: tuple[str, ...] = ()


SPECS: dict[str, CsvSpec] = {s.file.removesuffix(".csv"): s for s in (
    CsvSpec("patients.csv", ("ID", "BIRTHDATE", "FIRST", "LAST", "GENDER"),
            ("DEATHDATE", "ADDRESS", "CITY", "STATE", "ZIP", "MIDDLE", "FIPS", "INCOME"),
            dates=("BIRTHDATE", "DEATHDATE"), nonempty=("ID", "BIRTHDATE")),
    CsvSpec("encounters.csv", ("ID", "START", "PATIENT", "ENCOUNTERCLASS"),
            ("STOP", "ORGANIZATION", "PROVIDER", "CODE", "DESCRIPTION", "REASONCODE"),
            timestamps=("START", "STOP"), nonempty=("ID", "START", "PATIENT")),
    CsvSpec("conditions.csv", ("START", "PATIENT", "CODE"),
            ("STOP", "ENCOUNTER", "DESCRIPTION", "SYSTEM"), dates=("START", "STOP"),
            identity=("START", "STOP", "PATIENT", "ENCOUNTER", "CODE", "DESCRIPTION"),
            nonempty=("START", "PATIENT")),
    CsvSpec("procedures.csv", ("START|DATE", "PATIENT", "ENCOUNTER", "CODE"),
            ("STOP", "DESCRIPTION", "SYSTEM"), timestamps=("START", "STOP"),
            identity=("START", "STOP", "PATIENT", "ENCOUNTER", "CODE", "DESCRIPTION"),
            nonempty=("START", "PATIENT")),
    CsvSpec("observations.csv", ("DATE", "PATIENT", "CODE", "VALUE", "TYPE"),
            ("ENCOUNTER", "CATEGORY", "DESCRIPTION", "UNITS"), timestamps=("DATE",),
            identity=("DATE", "PATIENT", "ENCOUNTER", "CODE", "DESCRIPTION", "VALUE", "UNITS",
                      "TYPE"), nonempty=("DATE", "PATIENT")),
    CsvSpec("medications.csv", ("START", "PATIENT", "CODE", "DESCRIPTION"),
            ("STOP", "ENCOUNTER"), timestamps=("START", "STOP"),
            identity=("START", "STOP", "PATIENT", "ENCOUNTER", "CODE", "DESCRIPTION"),
            nonempty=("START", "PATIENT")),
)}


@dataclass
class CsvTable:
    """One Synthea file as read.

    Attributes
    ----------
    name: spec name (``"patients"``, ``"encounters"``, …); file: its file name.
    rows: one dict per data row, canonical column name → typed value (missing column → key
        absent); each row also carries ``"_line"`` (int, the file line the row ends on).
    absent_optional: optional columns the file does not have (version differences).
    ignored: header names the importer does not use (e.g. ``SSN``, cost columns).
    """

    name: str
    file: str
    rows: list[dict] = field(default_factory=list)
    absent_optional: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)


def parse_instant(text: str) -> datetime:
    """An ISO-8601 timestamp as an aware UTC datetime, microseconds dropped.

    ``"2023-01-27T16:17:47Z"``, ``"2023-01-27T16:17Z"``, offsets (converted to UTC) and bare
    dates (midnight UTC) are accepted; a timestamp without zone is taken as UTC (Synthea writes
    UTC). Raises ValueError for anything else.
    """
    text = text.strip()
    if len(text) == 10:
        day = date.fromisoformat(text)
        return datetime(day.year, day.month, day.day, tzinfo=UTC)
    value = datetime.fromisoformat(text)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).replace(microsecond=0)


def parse_day(text: str) -> date:
    """An ISO-8601 date (or the UTC date of a timestamp). Raises ValueError otherwise."""
    text = text.strip()
    return date.fromisoformat(text) if len(text) == 10 else parse_instant(text).date()


def _columns(spec: CsvSpec, header: list[str], path: Path) -> tuple[dict[str, int], list, list]:
    """Canonical column → index; absent optional columns; ignored header names."""
    index: dict[str, int] = {}
    for i, name in enumerate(header):
        index.setdefault(name.strip().lstrip("\ufeff").upper(), i)
    wanted: dict[str, int] = {}
    for entry in spec.required:
        names = entry.split("|")
        hit = next((n for n in names if n in index), None)
        if hit is None:
            raise SyntheaFormatError(
                f"{path.name}: required column {names[0]!r} is missing"
                + (f" (also accepted: {', '.join(repr(n) for n in names[1:])})"
                   if len(names) > 1 else "")
                + f"; found columns: {', '.join(h.strip() for h in header)}")
        wanted[names[0]] = index[hit]
    absent = [c for c in spec.optional if c not in index]
    wanted.update({c: index[c] for c in spec.optional if c in index})
    used = set(wanted.values())
    ignored = [h.strip() for i, h in enumerate(header) if i not in used]
    return wanted, absent, ignored


def read_table(folder: Path, name: str) -> CsvTable:
    """Read and type one Synthea file of :data:`SPECS` from an export folder.

    Parameters
    ----------
    folder: the Synthea CSV output folder (``output/csv``).
    name: a key of :data:`SPECS`, e.g. ``"encounters"``.

    Returns
    -------
    CsvTable: typed rows (empty fields → None) plus version facts.

    Raises
    ------
    SyntheaFormatError: the file is missing or empty (no header row), a required column is
        missing (names file and column), a row has the wrong number of fields, or a timestamp /
        date does not parse (names file, line and column), or the file is not UTF-8 (names file,
        line and byte).
    """
    spec = SPECS[name]
    path = folder / spec.file
    if not path.is_file():
        raise SyntheaFormatError(f"{spec.file} is missing in {folder} (a Synthea CSV export "
                                 f"has {', '.join(s.file for s in SPECS.values())})")
    try:
        return _read(spec, path, name)
    except UnicodeDecodeError as exc:
        raise _not_utf8(path, exc) from None


def _not_utf8(path: Path, exc: UnicodeDecodeError) -> SyntheaFormatError:
    """The error for a CSV file that is not UTF-8, naming the first line (1-based, physical, as the
    csv reader counts) and byte that do not decode."""
    for number, line in enumerate(path.read_bytes().split(b"\n"), 1):
        try:
            line.decode("utf-8")
        except UnicodeDecodeError as bad:
            byte = line[bad.start]
            return SyntheaFormatError(
                f"{path.name} line {number} is not UTF-8 text (byte 0x{byte:02x} at position {bad.start + 1} of "
                "the line): Synthea writes UTF-8, so this file was re-saved in another encoding — export it "
                f"again, or convert it, e.g. `iconv -f latin1 -t utf-8 {path.name} > fixed.csv`")
    return SyntheaFormatError(f"{path.name} is not UTF-8 text ({exc.reason})")


def _read(spec: CsvSpec, path: Path, name: str) -> CsvTable:
    """:func:`read_table`'s reading, once the file exists; UnicodeDecodeError passes through."""
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if not header or not any(h.strip() for h in header):
            raise SyntheaFormatError(f"{spec.file} is empty: expected a header row with "
                                     f"{', '.join(spec.required)}")
        wanted, absent, ignored = _columns(spec, header, path)
        table = CsvTable(name, spec.file, absent_optional=absent, ignored=ignored)
        kinds = {**{c: parse_instant for c in spec.timestamps},
                 **{c: parse_day for c in spec.dates}}
        for fields in reader:
            if not fields or (len(fields) == 1 and not fields[0].strip()):
                continue  # blank line (e.g. at the end of the file)
            if len(fields) != len(header):
                raise SyntheaFormatError(f"{spec.file} line {reader.line_num}: "
                                         f"{len(fields)} fields, the header has {len(header)}")
            row: dict = {"_line": reader.line_num}
            for column, i in wanted.items():
                text = fields[i]
                if text == "":
                    if column in spec.nonempty:
                        raise SyntheaFormatError(
                            f"{spec.file} line {reader.line_num}, column {column}: empty, but "
                            "every row needs it")
                    row[column] = None
                    continue
                parse = kinds.get(column)
                if parse is None:
                    row[column] = text
                    continue
                try:
                    row[column] = parse(text)
                except ValueError:
                    kind = "timestamp" if parse is parse_instant else "date"
                    raise SyntheaFormatError(
                        f"{spec.file} line {reader.line_num}, column {column}: {text!r} is not "
                        f"an ISO-8601 {kind}") from None
            table.rows.append(row)
    return table


def read_export(folder: Path) -> dict[str, CsvTable]:
    """All six files of :data:`SPECS` (see :func:`read_table`); raises SyntheaFormatError when
    ``folder`` is not a directory or ``patients.csv`` has no data row."""
    if not folder.is_dir():
        raise SyntheaFormatError(f"{folder} is not a folder (expected a Synthea output/csv)")
    tables = {name: read_table(folder, name) for name in SPECS}
    if not tables["patients"].rows:
        raise SyntheaFormatError("patients.csv has a header but no patient rows")
    return tables


def optional_names(folder: Path, file: str, column: str) -> dict[str, str]:
    """``Id`` → ``column`` of an optional side file (e.g. ``organizations.csv`` NAME); empty when
    the file or a column is absent or unreadable (side files only add names, never rows)."""
    path = folder / file
    if not path.is_file():
        return {}
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            if not reader.fieldnames:
                return {}
            names = {f.strip().upper(): f for f in reader.fieldnames}
            if "ID" not in names or column not in names:
                return {}
            return {r[names["ID"]]: r[names[column]] for r in reader
                    if r.get(names["ID"]) and r.get(names[column])}
    except UnicodeDecodeError:  # not UTF-8: names are only a nicety
        return {}
