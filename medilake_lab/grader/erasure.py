"""Erasure requests (lab 07) as the graders of every lab honour them.

Lab 07 erases one patient from every table and records the request in the Delta table
``audit.erasure_requests`` (``<warehouse>/audit/erasure_requests``: ``request_id``, ``patient_id``,
``mrn``, ``requested_at``, … ); each erasure commit carries the userMetadata
``erasure:<request_id>`` (:attr:`medilake_lab.grader.commits.Commit.erasure_request`).

What the graders of labs 01–06 do with it, decided here and in
:mod:`medilake_lab.grader.reference.raw` (:func:`~medilake_lab.grader.reference.raw.erased_line`):

* a raw line whose text holds an erased patient id as a JSON string (``"PAT000123"``) counts as
  never delivered, for every expectation recomputed from the raw feeds;
* a DELETE is an audited erasure (:func:`audited_delete`, else :func:`audit_gap` says why not)
  when its userMetadata names a recorded request and its predicate names that request's patient
  id — the one sanctioned exception to an append-only bronze table;
* commits made for the erasure (:func:`made_for_erasure`: userMetadata naming a recorded request,
  or a DELETE or MERGE committed at or after the earliest ``requested_at``) are lab 07's to grade:
  e.g. the keyed MERGE that refreshes a gold table after the erasure is not lab 04's refresh
  decision, nor a batch write into lab 05's streaming tables.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from medilake_lab.errors import ColumnsMissing
from medilake_lab.grader.commits import Commit, Kind
from medilake_lab.grader.delta import Table
from medilake_lab.grader.toolkit import naive_utc

#: The audit table of erasure requests (lab 07).
AUDIT_TABLE = "audit.erasure_requests"
#: Columns the graders read (``requested_at`` is optional for them).
REQUIRED = ("request_id", "patient_id")


@dataclass(frozen=True)
class ErasureRequest:
    """One row of :data:`AUDIT_TABLE`: ``request_id``, ``patient_id`` (str), ``mrn`` (str or None),
    ``requested_at`` (naive UTC datetime or None)."""

    request_id: str
    patient_id: str
    mrn: str | None = None
    requested_at: datetime | None = None


def read_requests(table: Table) -> dict[str, ErasureRequest]:
    """Request id → request, for every row of the audit table with a request id and a patient id.

    Raises ColumnsMissing naming the table when ``request_id`` or ``patient_id`` is absent (and
    the errors of :meth:`Table.query` for a table delta-rs cannot read)."""
    absent = [c for c in REQUIRED if c not in table.columns]
    if absent:
        raise ColumnsMissing(f"{table.name} lacks column(s) {', '.join(absent)} (lab 07's erasure audit)")
    columns = [*REQUIRED, *(c for c in ("mrn", "requested_at") if c in table.columns)]
    rows = naive_utc(table.to_arrow(columns)).to_pylist()
    return {str(r["request_id"]): ErasureRequest(str(r["request_id"]), str(r["patient_id"]), r.get("mrn"),
                                                 r.get("requested_at"))
            for r in rows if r["request_id"] is not None and r["patient_id"] is not None}


def audit_gap(commit: Commit, requests: dict[str, ErasureRequest]) -> str:
    """Why a DELETE commit is not an audited erasure, in a finding's words (``"no userMetadata
    erasure:<request_id>"``, ``"userMetadata erasure:R1 names no request in audit.erasure_requests"``,
    ``"its predicate … does not name patient P1 of request R1"``); ``""`` when its userMetadata
    ``erasure:<request_id>`` names a recorded request and its predicate names that request's patient
    id. Not meant for other kinds of commit (they are never an erasure)."""
    if commit.erasure_request is None:
        return "no userMetadata erasure:<request_id>"
    request = requests.get(commit.erasure_request)
    if request is None:
        return f"userMetadata erasure:{commit.erasure_request} names no request in {AUDIT_TABLE}"
    if request.patient_id not in commit.predicate:
        shown = commit.predicate if len(commit.predicate) <= 80 else commit.predicate[:77] + "…"
        return f"its predicate {shown!r} does not name patient {request.patient_id} of request {request.request_id}"
    return ""


def audited_delete(commit: Commit, requests: dict[str, ErasureRequest]) -> bool:
    """True for a DELETE that carries out a recorded erasure request (:func:`audit_gap` is empty)."""
    return commit.kind is Kind.DELETE and not audit_gap(commit, requests)


def made_for_erasure(commit: Commit, requests: dict[str, ErasureRequest]) -> bool:
    """True when a commit belongs to an erasure: its userMetadata names a recorded request, or it is
    a DELETE or MERGE (the erasure's and the keyed refresh's kinds) committed at or after the
    earliest ``requested_at`` of the recorded requests."""
    if commit.erasure_request in requests:
        return True
    starts = [r.requested_at for r in requests.values() if r.requested_at is not None]
    if not starts or commit.timestamp_ms is None or commit.kind not in (Kind.DELETE, Kind.MERGE):
        return False
    first = min(starts).replace(tzinfo=UTC).timestamp() * 1000
    return commit.timestamp_ms >= first
