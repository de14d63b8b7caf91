"""Diagnoses: 1-3 ICD-10-CM codes per encounter.

The primary diagnosis fits the encounter class (an acute problem, a chronic follow-up, or the
same problem as the stay a readmission follows); secondary diagnoses re-record the patient's
active chronic conditions with their fixed onset date and no resolved date (``is_chronic`` Y).
Acute diagnoses are inserted without a resolved date and get an op U setting it once resolved.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from medilake_lab.contract.codes import ICD10_CM
from medilake_lab.contract.feeds import ENCOUNTER_CLASSES
from medilake_lab.datagen.conditions import (
    ACUTE_BY_CLASS,
    CHRONIC_CODES,
    INPATIENT_CHRONIC,
    weighted,
)
from medilake_lab.datagen.encounters import AMB, ED, INP, Encounters
from medilake_lab.datagen.frame import Versions, concat, inserts, random_deletes
from medilake_lab.datagen.timeline import DAY, END_TS, HOUR, MINUTE, date_col

_LUNG_HEART = ("J44.9", "J45.909", "I50.9")
_ORTHO = ("M17.11", "M16.11")
RANDOM_DELETE_P = 0.003


@dataclass
class Diagnoses:
    """Diagnosis versions and the primary code of each encounter."""

    versions: Versions
    primary: np.ndarray  # object array of ICD-10-CM codes, one per encounter
    encounter: np.ndarray  # encounter index per diagnosis entity


def _pick(keys: list[int], u: float) -> int:
    return keys[min(int(u * len(keys)), len(keys) - 1)]


def _choose_codes(rng, E: Encounters, has: np.ndarray, onset: np.ndarray):
    """Per-encounter walk: (encounter, chronic index or -1, code, is_primary) rows."""
    n, k = len(E), has.shape[1]
    acute = np.empty(n, dtype=object)
    for c in range(len(ENCOUNTER_CLASSES)):
        mask = E.cls == c
        codes, p = weighted(ACUTE_BY_CLASS[ENCOUNTER_CLASSES[c]])
        acute[mask] = rng.choice(codes, int(mask.sum()), p=p)
    u = rng.random((n, 3)).tolist()
    n_sec = rng.choice(3, n, p=[0.3, 0.4, 0.3]).tolist()
    order_keys = rng.random((n, k))
    chronic_of = [np.flatnonzero(r).tolist() for r in has]
    idx = {c: i for i, c in enumerate(CHRONIC_CODES)}
    inp_chronic = {idx[c] for c in INPATIENT_CHRONIC}
    lung_heart, ortho = {idx[c] for c in _LUNG_HEART}, {idx[c] for c in _ORTHO}
    pat, cls, admit = E.patient.tolist(), E.cls.tolist(), E.admit.tolist()
    readmit, elective = E.readmit_of.tolist(), (E.admission_type == 0).tolist()
    acute_l = acute.tolist()
    primary: list[tuple[int, str]] = []  # per encounter: (chronic index or -1, code)
    rows = []
    for e in range(n):
        p, c = pat[e], cls[e]
        active = [j for j in chronic_of[p] if onset[p, j] <= admit[e]]
        ue = u[e]
        prim, code = -1, acute_l[e]
        if readmit[e] >= 0 and ue[0] < 0.7:  # readmitted for the same problem
            prim, code = primary[readmit[e]]
        elif c == INP:
            pool = [j for j in active if j in (ortho if elective[e] else inp_chronic)]
            if pool and (elective[e] or ue[1] < 0.35):
                prim = _pick(pool, ue[2])
        elif c == ED:
            pool = [j for j in active if j in lung_heart]
            if pool and ue[1] < 0.12:
                prim = _pick(pool, ue[2])
        elif active and ue[1] < (0.55 if c == AMB else 0.3):
            prim = _pick(active, ue[2])
        if prim >= 0:
            code = CHRONIC_CODES[prim]
        primary.append((prim, code))
        rows.append((e, prim, code, 1))
        others = [j for j in active if j != prim]
        if others and n_sec[e]:
            others.sort(key=lambda j: order_keys[e, j])
            rows += [(e, j, CHRONIC_CODES[j], 0) for j in others[:n_sec[e]]]
    return rows, np.array([x[1] for x in primary], dtype=object)


def build_diagnoses(rng: np.random.Generator, E: Encounters, has: np.ndarray,
                    onset: np.ndarray, patient_ids: np.ndarray) -> Diagnoses:
    """Build diagnosis versions for encounters ``E``.

    Parameters
    ----------
    has, onset: ``(n_patients, len(CHRONIC_CODES))`` chronic flags and onset instants.
    patient_ids: ``patient_id`` per patient.
    """
    rows, primary = _choose_codes(rng, E, has, onset)
    enc = np.array([r[0] for r in rows], dtype=np.int64)
    chron = np.array([r[1] for r in rows], dtype=np.int64)
    code = np.array([r[2] for r in rows], dtype=object)
    is_primary = np.array([r[3] for r in rows], dtype=bool)
    n = len(rows)
    pat = E.patient[enc]
    admit_day = E.admit[enc] // DAY * DAY
    cls = E.cls[enc]
    is_z = np.array([c.startswith("Z") for c in code.tolist()], dtype=bool)
    chronic = chron >= 0
    early = np.where((cls == ED) | (cls == INP), rng.integers(0, 4, n), rng.integers(0, 8, n))
    acute_onset = np.where(is_z, admit_day, admit_day - early * DAY)
    onset_ts = np.where(chronic, onset[pat, np.maximum(chron, 0)], acute_onset)
    disc_day = np.where(E.discharge[enc] >= 0, E.discharge[enc], END_TS + 400 * DAY) // DAY * DAY
    resolved = np.select(
        [is_z, cls == INP],
        [admit_day, disc_day + rng.integers(0, 15, n) * DAY],
        admit_day + rng.integers(2, 22, n) * DAY)
    resolved = np.where(chronic, -1, resolved)
    coded = np.where(E.discharge[enc] >= 0, E.end[enc], E.admit[enc] + 2 * HOUR)
    t_ins = coded + rng.integers(30 * MINUTE, 24 * HOUR, n)
    final = {
        "diagnosis_id": [f"DX{i + 1:09d}" for i in range(n)],
        "encounter_id": E.ids[enc], "patient_id": patient_ids[pat],
        "icd10_code": code,
        "description": [ICD10_CM[c].description for c in code.tolist()],
        "diagnosis_type": np.where(is_primary, "primary", "secondary"),
        "is_chronic": np.where(chronic, "Y", "N"),
        "onset_date": date_col(onset_ts),
        "resolved_date": date_col(np.maximum(resolved, 0), resolved < 0),
    }
    ins = inserts(final, t_ins)
    later = (resolved >= 0) & (resolved > t_ins)
    ins.cols["resolved_date"] = ins.cols["resolved_date"].copy()
    ins.cols["resolved_date"][later] = None
    todo = np.flatnonzero(later)
    upd = inserts(final, t_ins).take(todo).as_op(
        "U", np.maximum(resolved[todo], t_ins[todo] + HOUR) + rng.integers(HOUR, 3 * DAY, len(todo)))
    v = random_deletes(concat([ins, upd]), RANDOM_DELETE_P, rng, HOUR, 10 * DAY)
    return Diagnoses(v, primary, enc)

