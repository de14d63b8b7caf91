"""Medications: long-term drugs for chronic conditions and short courses for acute problems.

A chronic condition with a drug mapping gets its drug(s) recorded at the patient's first visit
on or after the onset (medication reconciliation): ``start_date`` near the onset, no
``end_date`` (open-ended, active). Some are discontinued later: an op U sets ``end_date``.
Acute problems get a short course with ``end_date`` set when prescribed. A few orders are
deleted as entered in error.
"""

from __future__ import annotations

import numpy as np

from medilake_lab.contract.codes import RXNORM
from medilake_lab.datagen.conditions import (
    ACUTE_DRUGS,
    CHRONIC_CODES,
    CHRONIC_DRUGS,
    EXACERBATION_DRUG,
)
from medilake_lab.datagen.encounters import AMB, ED, INP, OUT, Encounters
from medilake_lab.datagen.frame import Versions, concat, inserts, random_deletes
from medilake_lab.datagen.timeline import DAY, END_TS, HOUR, MINUTE, date_col

SECOND_DRUG_P = 0.3
DISCONTINUE_P = 0.3
ACUTE_RX_P = {AMB: 0.45, OUT: 0.15, ED: 0.6, INP: 0.75}
RANDOM_DELETE_P = 0.01


def _chronic_orders(rng, E: Encounters, has: np.ndarray, onset: np.ndarray):
    """(encounter, rxnorm, start instant) for long-term drugs."""
    by_patient = np.split(np.arange(len(E))[np.argsort(E.patient, kind="stable")],
                          np.cumsum(np.bincount(E.patient, minlength=has.shape[0]))[:-1])
    rows, given = [], set[tuple[int, str]]()
    pats, conds = np.nonzero(has)
    u = rng.random((len(pats), 3)).tolist()
    for (p, j), ur in zip(zip(pats.tolist(), conds.tolist(), strict=True), u, strict=True):
        drugs = CHRONIC_DRUGS.get(CHRONIC_CODES[j])
        encs = by_patient[p]
        if not drugs or len(encs) == 0:
            continue
        after = encs[E.admit[encs] >= onset[p, j]]
        if len(after) == 0:
            continue
        e = int(after[0])
        start = max(int(onset[p, j]), int(E.admit[e]) - int(ur[2] * 365 * DAY))
        picks = [drugs[0] if ur[0] < 0.6 or len(drugs) == 1 else drugs[1 + int(ur[1] * (len(drugs) - 1))]]
        if len(drugs) > 1 and ur[1] < SECOND_DRUG_P:
            picks.append(drugs[(drugs.index(picks[0]) + 1) % len(drugs)])
        rows += [(e, d, min(start, int(E.admit[e]))) for d in picks if (p, d) not in given]
        given.update((p, d) for d in picks)
    return rows


def _acute_orders(rng, E: Encounters, primary: np.ndarray):
    """(encounter, rxnorm, start instant, days) for short courses."""
    rows = []
    u = rng.random(len(E)).tolist()
    days_jitter = rng.integers(-2, 3, len(E)).tolist()
    for e, (code, c) in enumerate(zip(primary.tolist(), E.cls.tolist(), strict=True)):
        drug = ACUTE_DRUGS.get(code) or (EXACERBATION_DRUG if code in ("J44.9", "J45.909")
                                         and c in (ED, INP) else None)
        if drug is None or u[e] >= ACUTE_RX_P[c]:
            continue
        start = int(E.end[e]) if c == INP else int(E.admit[e])
        rows.append((e, drug[0], start, max(3, drug[1] + days_jitter[e])))
    return rows


def build_medications(rng: np.random.Generator, E: Encounters, has: np.ndarray,
                      onset: np.ndarray, primary: np.ndarray, patient_ids: np.ndarray
                      ) -> tuple[Versions, np.ndarray]:
    """Medication versions and the encounter index of each medication entity.

    Parameters
    ----------
    has, onset: ``(n_patients, len(CHRONIC_CODES))`` chronic flags and onset instants.
    primary: primary ICD-10-CM code per encounter.
    patient_ids: ``patient_id`` per patient.
    """
    chronic = _chronic_orders(rng, E, has, onset)
    acute = _acute_orders(rng, E, primary)
    enc = np.array([r[0] for r in chronic] + [r[0] for r in acute], dtype=np.int64)
    code = np.array([r[1] for r in chronic] + [r[1] for r in acute], dtype=object)
    start = np.array([r[2] for r in chronic] + [r[2] for r in acute], dtype=np.int64)
    days = np.array([-1] * len(chronic) + [r[3] for r in acute], dtype=np.int64)
    order = np.lexsort((np.arange(len(enc)), enc))
    enc, code, start, days = enc[order], code[order], start[order], days[order]
    n = len(enc)
    start_day = start // DAY * DAY
    end_day = np.where(days > 0, start_day + days * DAY, -1)
    drug = [RXNORM[c] for c in code.tolist()]
    final = {
        "medication_id": [f"MED{i + 1:09d}" for i in range(n)],
        "patient_id": patient_ids[E.patient[enc]], "encounter_id": E.ids[enc],
        "rxnorm_code": code, "drug_name": [d.name for d in drug],
        "dose": [d.dose for d in drug], "dose_unit": [d.dose_unit for d in drug],
        "route": [d.route for d in drug], "frequency": [d.frequency for d in drug],
        "start_date": date_col(start_day), "end_date": date_col(np.maximum(end_day, 0), end_day < 0),
    }
    ordered = np.maximum(E.end[enc], E.admit[enc]) + rng.integers(10 * MINUTE, 6 * HOUR, n)
    v = inserts(final, ordered)
    # discontinue some long-term drugs: op U with end_date set at the stop time
    stop_at = ordered + (rng.random(n) * (END_TS + 365 * DAY - ordered)).astype(np.int64)
    stop = np.flatnonzero((days < 0) & (rng.random(n) < DISCONTINUE_P) & (stop_at <= END_TS))
    upd = v.take(stop)
    upd.set(end_date=date_col(stop_at[stop] // DAY * DAY))
    upd.as_op("U", stop_at[stop] + rng.integers(MINUTE, 2 * HOUR, len(stop)))
    v = random_deletes(concat([v, upd]), RANDOM_DELETE_P, rng, HOUR, 5 * DAY)
    return v, enc


