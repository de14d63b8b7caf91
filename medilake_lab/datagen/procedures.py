"""Procedures: 0-2 CPT codes per encounter that fit its class and primary diagnosis.

Office and emergency visits carry an evaluation-and-management code, hospital stays an initial
hospital care code; surgery, imaging and endoscopy follow the primary diagnosis (appendicitis →
laparoscopic appendectomy, hip fracture → hip replacement, ...).
"""

from __future__ import annotations

import numpy as np

from medilake_lab.contract.codes import CPT
from medilake_lab.datagen.encounters import AMB, ED, INP, OUT, Encounters
from medilake_lab.datagen.frame import Versions, concat, inserts, latest, random_deletes
from medilake_lab.datagen.timeline import DAY, HOUR, MINUTE, ts_col

#: Primary diagnosis → the procedure it typically leads to.
BY_DIAGNOSIS = {
    "K35.80": "44970", "S72.001A": "27130", "M16.11": "27130", "M17.11": "27447",
    "K80.20": "47562", "I21.4": "92928", "K57.30": "45378", "K21.9": "43239",
    "R07.9": "93000", "R10.9": "74177", "R51.9": "70450", "S06.0X0A": "70450",
    "S93.401A": "73610", "J18.9": "71046", "L03.115": "12001", "I63.9": "70450",
    "Z23": "90686",
}
#: Class → (first-procedure choices, weights), (second-procedure fallback choices).
FIRST = {
    AMB: (("99213", "99214", "99203"), (0.55, 0.35, 0.10)),
    ED: (("99283", "99284", "99285"), (0.4, 0.35, 0.25)),
    INP: (("99223",), (1.0,)),
    OUT: (("71046", "74177", "93306", "45378", "43239", "80053", "85025", "80061"),
          (3, 2, 2, 2, 1, 1, 1, 1)),
}
SECOND = {
    AMB: ("36415", "93000", "83036", "80061", "85025", "90471"),
    ED: ("71046", "93000", "80053", "85025", "70450"),
    INP: ("99232", "99238", "93306", "71046"),
    OUT: ("36415", "85025", "80053"),
}
P_COUNT = {AMB: (0.12, 0.55, 0.33), ED: (0.03, 0.4, 0.57), INP: (0.02, 0.38, 0.6),
           OUT: (0.05, 0.75, 0.2)}
CORRECTION_P = 0.01
RANDOM_DELETE_P = 0.003


def build_procedures(rng: np.random.Generator, E: Encounters, primary: np.ndarray,
                     patient_ids: np.ndarray, n_providers: int) -> tuple[Versions, np.ndarray]:
    """Procedure versions and the encounter index of each procedure entity.

    Parameters
    ----------
    primary: primary ICD-10-CM code per encounter.
    patient_ids: ``patient_id`` per patient.
    n_providers: size of the provider pool (for correction of the performing provider).
    """
    n = len(E)
    count = np.zeros(n, dtype=np.int64)
    first = np.empty(n, dtype=object)
    second = np.empty(n, dtype=object)
    for c in (AMB, ED, INP, OUT):
        m = E.cls == c
        k = int(m.sum())
        count[m] = rng.choice(3, k, p=P_COUNT[c])
        codes, w = FIRST[c]
        first[m] = rng.choice(np.array(codes, dtype=object), k, p=np.array(w) / np.sum(w))
        second[m] = rng.choice(np.array(SECOND[c], dtype=object), k)
    mapped = np.array([BY_DIAGNOSIS.get(d) for d in primary.tolist()], dtype=object)
    has_map = np.array([x is not None for x in mapped.tolist()], dtype=bool)
    # outpatient: the mapped procedure *is* the visit; elsewhere it is the second procedure
    first = np.where((E.cls == OUT) & has_map, mapped, first)
    second = np.where((E.cls != OUT) & has_map, mapped, second)
    second = np.where(second == first, "36415", second)
    count = np.where(has_map & (count == 0), 1, count)
    count = np.where(has_map & (E.cls != OUT), 2, count)
    enc = np.concatenate([np.flatnonzero(count >= 1), np.flatnonzero(count >= 2)])
    code = np.concatenate([first[count >= 1], second[count >= 2]])
    order = np.lexsort((np.arange(len(enc)), enc))
    enc, code = enc[order], code[order]
    m = len(enc)
    span = np.maximum(E.end[enc] - E.admit[enc], MINUTE)
    is_em = np.isin(code, ["99213", "99214", "99203", "99283", "99284", "99285", "99223"])
    offset = np.where(is_em, rng.integers(0, 45 * MINUTE, m), (rng.random(m) * span))
    when = E.admit[enc] + np.minimum(offset.astype(np.int64), span)
    rnd_prov = np.array([f"PRV-SYN-{x:04d}" for x in rng.integers(1, n_providers + 1, m)],
                        dtype=object)
    final = {
        "procedure_id": [f"PRC{i + 1:09d}" for i in range(m)],
        "encounter_id": E.ids[enc], "patient_id": patient_ids[E.patient[enc]],
        "cpt_code": code, "description": [CPT[c].description for c in code.tolist()],
        "procedure_ts": ts_col(when),
        "provider_id": np.where(is_em, E.provider[enc], rnd_prov),
    }
    v = inserts(final, when + rng.integers(HOUR, 48 * HOUR, m))
    fix = np.flatnonzero(rng.random(m) < CORRECTION_P)
    corr = v.take(latest(v, fix))
    corr.set(provider_id=[f"PRV-SYN-{x:04d}" for x in rng.integers(1, n_providers + 1, len(fix))])
    corr.as_op("U", corr.ts + rng.integers(HOUR, 10 * DAY, len(fix)))
    v = random_deletes(concat([v, corr]), RANDOM_DELETE_P, rng, HOUR, 10 * DAY)
    return v, enc
