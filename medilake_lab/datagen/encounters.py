"""Encounters: per-patient visit timelines, hospital stays and 30-day readmissions.

Each patient gets a Poisson number of visits spread over their active window (registration or
2024-01-01, whichever is later, up to the as-of day), more with more chronic conditions.
Visits never overlap; an ``expired`` discharge ends the timeline. After an inpatient stay a
readmission (unplanned inpatient stay within 30 days of discharge) follows with probability
``READMIT_P``.

Versions: ambulatory and outpatient visits are inserted complete when the visit closes;
emergency and inpatient visits are inserted at admission with ``discharge_ts`` null and updated
(op U) at discharge. A few encounters get a later correction (op U) and a few are deleted as
entered in error (op D) — their diagnoses, procedures and labs are deleted with them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from medilake_lab.contract.feeds import DRIFT_COLUMN, ENCOUNTER_CLASSES
from medilake_lab.datagen.frame import Versions, concat, inserts, latest
from medilake_lab.datagen.timeline import DAY, END_TS, HOUR, MINUTE, obj, ts_col

AMB, OUT, ED, INP = (ENCOUNTER_CLASSES.index(c) for c in
                     ("ambulatory", "outpatient", "emergency", "inpatient"))
#: Share of each class among scheduled (non-readmission) visits, in ENCOUNTER_CLASSES order.
CLASS_P = np.array([0.105, 0.255, 0.18, 0.46])  # inpatient, outpatient, emergency, ambulatory
VISITS_PER_YEAR = 3.2
READMIT_P = 0.13
CORRECTION_P = 0.03
DELETE_P = 0.008  # of ambulatory/outpatient visits

FACILITIES = (
    ("FAC001", "MediLake General Hospital"),
    ("FAC002", "MediLake Northside Medical Center"),
    ("FAC003", "MediLake Outpatient Pavilion"),
    ("FAC004", "Lakeshore Family Clinic (MediLake)"),
)
FACILITY_P = {  # class -> probabilities over FACILITIES
    INP: (0.62, 0.38, 0, 0), ED: (0.6, 0.4, 0, 0), OUT: (0.3, 0.2, 0.5, 0), AMB: (0, 0, 0.35, 0.65),
}
DEPARTMENTS = {
    INP: ("Internal Medicine", "Cardiology", "Orthopedics", "General Surgery", "Pulmonology",
          "Neurology", "Intensive Care"),
    ED: ("Emergency Medicine",),
    OUT: ("Radiology", "Gastroenterology", "Cardiology", "Orthopedics", "Endoscopy"),
    AMB: ("Family Medicine", "Internal Medicine", "Endocrinology", "Pediatrics", "Cardiology"),
}
DISPOSITIONS = ("home", "home_health", "snf", "transfer", "ama", "expired")
DISPOSITION_P = {INP: (0.66, 0.12, 0.11, 0.05, 0.03, 0.03), ED: (0.93, 0, 0, 0.03, 0.037, 0.003)}
ADMISSION_TYPES = ("elective", "urgent", "emergency")
ADMISSION_TYPE_P = {INP: (0.35, 0.2, 0.45), ED: (0, 0, 1), OUT: (0.85, 0.15, 0), AMB: (0.75, 0.25, 0)}


@dataclass
class Encounters:
    """Encounter versions plus per-encounter facts for the child feeds (arrays of length n).

    Attributes
    ----------
    versions: all encounter versions.
    ids: ``encounter_id``; patient: patient index; cls: class index (``ENCOUNTER_CLASSES``).
    admit: admission instant; discharge: discharge instant (``-1`` if still open at the as-of day).
    end: discharge, or the as-of instant for open stays.
    readmit_of: index of the stay this one readmits (``-1`` if none).
    admission_type: index into ``ADMISSION_TYPES``; provider: attending provider id.
    deleted: True for encounters deleted as entered in error; deleted_at: when (else -1).
    """

    versions: Versions
    ids: np.ndarray
    patient: np.ndarray
    cls: np.ndarray
    admit: np.ndarray
    discharge: np.ndarray
    end: np.ndarray
    readmit_of: np.ndarray
    admission_type: np.ndarray
    provider: np.ndarray
    deleted: np.ndarray
    deleted_at: np.ndarray

    def __len__(self) -> int:
        return len(self.ids)


def _time_of_day(rng, cls: np.ndarray) -> np.ndarray:
    """Seconds after midnight: office hours for scheduled visits, any time for emergencies."""
    office = rng.integers(8 * HOUR, 17 * HOUR, len(cls))
    anytime = rng.integers(0, DAY, len(cls))
    return np.where((cls == AMB) | (cls == OUT), office, anytime)


def _duration(rng, cls: np.ndarray) -> np.ndarray:
    """Visit length in seconds: right-skewed hospital stays, same-day hours otherwise."""
    n = len(cls)
    los_days = np.clip(rng.lognormal(np.log(3.0), 0.8, n), 0.5, 30.0)
    ed_hours = np.clip(rng.lognormal(np.log(4.0), 0.5, n), 1.0, 20.0)
    out_hours = rng.uniform(1.0, 6.0, n)
    amb_minutes = rng.uniform(15, 60, n)
    dur = np.select([cls == INP, cls == ED, cls == OUT],
                    [los_days * DAY, ed_hours * HOUR, out_hours * HOUR], amb_minutes * MINUTE)
    return dur.astype(np.int64)


def _timelines(rng, n_pat, start, burden):
    """Candidate visits per patient, then the sequential walk that makes them consistent."""
    years = (END_TS - start) / (365.25 * DAY)
    lam = VISITS_PER_YEAR * years * (0.55 + 0.3 * burden)
    k = rng.poisson(lam)
    pat = np.repeat(np.arange(n_pat), k)
    day0 = start[pat] // DAY * DAY
    span_days = np.maximum((END_TS - day0) // DAY, 1)
    cls = rng.choice(4, len(pat), p=CLASS_P)
    admit = day0 + rng.integers(0, span_days) * DAY + _time_of_day(rng, cls)
    order = np.lexsort((admit, pat))
    pat, cls, admit = pat[order], cls[order], admit[order]
    # pre-drawn randomness for the walk, indexed by output row (at most one readmission per visit)
    n, m = len(pat), 2 * len(pat) + 1
    dur = _duration(rng, cls).tolist()
    disp_u, readmit_u = rng.random(m).tolist(), rng.random(m).tolist()
    gap = (rng.uniform(1.5, 29.0, m) * DAY).astype(np.int64).tolist()
    rd_dur = _duration(rng, np.full(m, INP)).tolist()
    cum = {c: np.cumsum(p).tolist() for c, p in DISPOSITION_P.items()}
    out = []  # (patient, cls, admit, discharge, disposition, readmit_of)
    pat_l, cls_l, adm_l = pat.tolist(), cls.tolist(), admit.tolist()
    i = 0
    while i < n:
        p, j = pat_l[i], i
        while j < n and pat_l[j] == p:
            j += 1
        free, pending, q = 0, None, i
        while q < j or pending is not None:
            if pending is not None and (q >= j or pending[0] <= adm_l[q]):
                (a, d, ro), c, pending = pending, INP, None
            else:
                a, c, d, ro = adm_l[q], cls_l[q], dur[q], -1
                q += 1
            if a < free:  # keep the time of day, move to a later day
                a += ((free - a) // DAY + 1) * DAY
            if a > END_TS:
                continue
            k = len(out)
            disp = next((x for x, edge in enumerate(cum[c]) if disp_u[k] < edge),
                        len(DISPOSITIONS) - 1) if c in cum else 0
            out.append((p, c, a, a + d, disp, ro))
            free = a + d + HOUR
            if DISPOSITIONS[disp] == "expired":
                break  # no visits after death
            if c == INP and pending is None and readmit_u[k] < READMIT_P:
                pending = (a + d + gap[k], rd_dur[k], k)
        i = j
    return out


def _by_class(rng, cls: np.ndarray, probs: dict[int, tuple]) -> np.ndarray:
    """Index drawn per row from ``probs[class of the row]``."""
    out = np.zeros(len(cls), dtype=np.int64)
    for c, p in probs.items():
        mask = cls == c
        out[mask] = rng.choice(len(p), int(mask.sum()), p=np.asarray(p) / np.sum(p))
    return out


def build_encounters(rng: np.random.Generator, n_pat: int, start: np.ndarray,
                     burden: np.ndarray, patient_ids: np.ndarray, n_providers: int) -> Encounters:
    """Build encounters for patients ``0..n_pat-1``.

    Parameters
    ----------
    start: first instant each patient can have a visit (epoch seconds).
    burden: number of chronic conditions per patient (drives the visit rate).
    patient_ids: ``patient_id`` per patient.
    n_providers: size of the attending-provider pool.
    """
    rows = _timelines(rng, n_pat, start, burden)
    arr = np.array(rows, dtype=np.int64).reshape(-1, 6)
    order = np.lexsort((arr[:, 0], arr[:, 2]))  # chronological ids
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    arr = arr[order]
    readmit_of = np.where(arr[:, 5] >= 0, rank[np.maximum(arr[:, 5], 0)], -1)
    pat, cls, admit, disc, disp = (arr[:, i] for i in range(5))
    n = len(arr)
    open_ = disc > END_TS
    ids = np.array([f"ENC{i + 1:08d}" for i in range(n)], dtype=object)
    atype = _by_class(rng, cls, ADMISSION_TYPE_P)
    atype[readmit_of >= 0] = np.where(rng.random(int((readmit_of >= 0).sum())) < 0.7, 2, 1)
    fac = _by_class(rng, cls, FACILITY_P)
    dept_i = _by_class(rng, cls, {c: (1,) * len(d) for c, d in DEPARTMENTS.items()})
    dept = obj([DEPARTMENTS[c][i] for c, i in zip(cls.tolist(), dept_i.tolist(), strict=True)])
    provider = obj([f"PRV-SYN-{x:04d}" for x in rng.integers(1, n_providers + 1, n).tolist()])
    source = _admission_source(rng, cls, atype, readmit_of)
    disposition = np.array(DISPOSITIONS, dtype=object)[disp]
    final = {
        "encounter_id": ids, "patient_id": patient_ids[pat],
        "encounter_class": np.array(ENCOUNTER_CLASSES, dtype=object)[cls],
        "admission_type": np.array(ADMISSION_TYPES, dtype=object)[atype],
        "admit_ts": ts_col(admit), "discharge_ts": ts_col(disc, open_),
        "facility_id": np.array([f[0] for f in FACILITIES], dtype=object)[fac],
        "facility_name": np.array([f[1] for f in FACILITIES], dtype=object)[fac],
        "department": dept, "attending_provider_id": provider,
        # numpy's stubs reject None as a where() operand; the result is an object array holding None
        "discharge_disposition": obj(np.where(open_, None, disposition)),  # type: ignore[call-overload]
        DRIFT_COLUMN: source,
    }
    same_day = (cls == AMB) | (cls == OUT)
    lag = rng.integers(5 * MINUTE, 90 * MINUTE, n)
    t_ins = np.where(same_day, disc + lag, admit + rng.integers(MINUTE, 20 * MINUTE, n))
    ins = inserts(final, t_ins)
    pending = ~same_day
    ins.cols["discharge_ts"] = ins.cols["discharge_ts"].copy()
    ins.cols["discharge_ts"][pending] = None
    ins.cols["discharge_disposition"] = ins.cols["discharge_disposition"].copy()
    ins.cols["discharge_disposition"][pending] = None
    closed = np.flatnonzero(pending & ~open_)
    upd = inserts(final, t_ins).take(closed).as_op(
        "U", disc[closed] + rng.integers(10 * MINUTE, 4 * HOUR, len(closed)))
    v = concat([ins, upd])
    v = concat([v, _corrections(rng, v, n, n_providers)])
    deleted = same_day & (rng.random(n) < DELETE_P)
    del_idx = np.flatnonzero(deleted)
    last = latest(v, del_idx)
    deleted_at = np.full(n, -1, dtype=np.int64)
    deleted_at[del_idx] = v.ts[last] + rng.integers(HOUR, 7 * DAY, len(del_idx))
    dels = v.take(last).as_op("D", deleted_at[del_idx])
    v = concat([v, dels])
    return Encounters(v, ids, pat, cls, admit, np.where(open_, -1, disc),
                      np.minimum(disc, END_TS), readmit_of, atype, provider,
                      deleted & (deleted_at <= END_TS), deleted_at)


def _corrections(rng, v: Versions, n: int, n_providers: int) -> Versions:
    """Later op U corrections of the attending provider on a few encounters."""
    who = np.flatnonzero(rng.random(n) < CORRECTION_P)
    rows = v.take(latest(v, who))
    prov = [f"PRV-SYN-{x:04d}" for x in rng.integers(1, n_providers + 1, len(who)).tolist()]
    rows.set(attending_provider_id=prov)
    return rows.as_op("U", rows.ts + rng.integers(HOUR, 20 * DAY, len(who)))


def _admission_source(rng, cls, atype, readmit_of) -> np.ndarray:
    """Value of the drift column (``admission_source``) per encounter."""
    n = len(cls)
    u = rng.random(n)
    src = np.where(cls == ED, np.where(u < 0.22, "ambulance", "self_referral"),
          np.where(cls == INP,
                   np.where(atype == 0, "physician_referral",
                            np.where(u < 0.06, "transfer_from_facility", "emergency_department")),
                   np.where(u < 0.55, "physician_referral",
                            np.where(u < 0.85, "clinic_referral", "self_referral"))))
    src = np.where(readmit_of >= 0, "emergency_department", src)
    return obj(src)


