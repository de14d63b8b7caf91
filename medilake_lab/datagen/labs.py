"""Lab results: LOINC panels drawn per encounter, values from per-test distributions.

Panels (basic metabolic, blood count, lipids, HbA1c, liver, thyroid) are ordered with
class-dependent probabilities; hospital stays repeat the metabolic panel and blood count daily.
Values follow the distribution parameters of :data:`medilake_lab.contract.codes.LOINC`, shifted for
patients with diabetes, chronic kidney disease or hyperlipidemia, so roughly 10-25 % of results
fall outside the reference range. Every record carries the table's unit and range.
"""

from __future__ import annotations

import numpy as np

from medilake_lab.contract.codes import LOINC
from medilake_lab.datagen.conditions import CHRONIC_CODES
from medilake_lab.datagen.encounters import AMB, ED, INP, OUT, Encounters
from medilake_lab.datagen.frame import Versions, concat, inserts, latest, random_deletes
from medilake_lab.datagen.timeline import DAY, HOUR, MINUTE, obj, ts_col

PANELS: dict[str, tuple[str, ...]] = {
    "BMP": ("2345-7", "2951-2", "2823-3", "3094-0", "2160-0", "17861-6"),
    "CBC": ("718-7", "6690-2", "777-3"),
    "LIPID": ("2093-3", "2571-8", "13457-7", "2085-9"),
    "A1C": ("4548-4",),
    "LIVER": ("1742-6", "1920-8"),
    "THYROID": ("3016-3",),
}
#: Probability that an encounter of each class orders each panel (PANELS order).
ORDER_P = {
    AMB: (0.2, 0.17, 0.21, 0.1, 0.07, 0.07),
    OUT: (0.25, 0.25, 0.08, 0.04, 0.08, 0.04),
    ED: (0.6, 0.66, 0.0, 0.0, 0.2, 0.02),
    INP: (1.0, 1.0, 0.15, 0.15, 0.35, 0.08),
}
MAX_DAILY_DRAWS = 3
CORRECTION_P = 0.008
RANDOM_DELETE_P = 0.001


def _panel_draws(rng, E: Encounters, diabetic: np.ndarray):
    """Rows of (encounter, panel, day) draws."""
    n = len(E)
    stay_days = np.clip(np.ceil((E.end - E.admit) / DAY), 1, MAX_DAILY_DRAWS).astype(np.int64)
    enc_l, panel_l, day_l = [], [], []
    for j, name in enumerate(PANELS):
        p = np.zeros(n)
        for c, probs in ORDER_P.items():
            p[E.cls == c] = probs[j]
        if name == "A1C":
            p = np.where(diabetic[E.patient] & (E.cls == AMB), 0.7, p)
        ordered = rng.random(n) < p
        reps = np.where(ordered, 1, 0)
        if name in ("BMP", "CBC"):
            reps = np.where(ordered & (E.cls == INP), stay_days, reps)
        enc = np.repeat(np.arange(n), reps)
        starts = np.repeat(np.cumsum(reps) - reps, reps)
        enc_l.append(enc)
        panel_l.append(np.full(len(enc), j))
        day_l.append(np.arange(len(enc)) - starts)
    enc, panel, day = (np.concatenate(x) for x in (enc_l, panel_l, day_l))
    order = np.lexsort((panel, day, enc))
    return enc[order], panel[order], day[order]


def _values(rng, codes: np.ndarray, pat: np.ndarray, inpatient: np.ndarray, flags) -> np.ndarray:
    """Result values per row, rounded per test."""
    diabetic, ckd, lipid = (f[pat] for f in flags)
    z = rng.standard_normal(len(codes))
    out = np.empty(len(codes))
    for code, t in LOINC.items():
        m = codes == code
        if not m.any():
            continue
        center = np.full(int(m.sum()), t.dist_center)
        if code == "2345-7":
            center = np.where(diabetic[m], center * 1.45, center)
        elif code == "4548-4":
            center = np.where(diabetic[m], center + 2.1, center)
        elif code in ("2160-0", "3094-0"):
            center = np.where(ckd[m], center * 1.8, center)
        elif code in ("2093-3", "13457-7"):
            center = np.where(lipid[m], center + 32, center)
        elif code == "2571-8":
            center = np.where(lipid[m], center * 1.35, center)
        elif code == "6690-2":
            center = np.where(inpatient[m], center * 1.25, center)
        v = center * np.exp(t.dist_spread * z[m]) if t.dist_log else center + t.dist_spread * z[m]
        floor = 10.0 ** -t.decimals
        out[m] = np.round(np.maximum(v, floor), t.decimals)
    return out


def build_labs(rng: np.random.Generator, E: Encounters, has: np.ndarray,
               patient_ids: np.ndarray) -> tuple[Versions, np.ndarray]:
    """Lab result versions and the encounter index of each lab result entity.

    Parameters
    ----------
    has: ``(n_patients, len(CHRONIC_CODES))`` chronic-condition flags.
    patient_ids: ``patient_id`` per patient.
    """
    col = {c: i for i, c in enumerate(CHRONIC_CODES)}
    diabetic = has[:, col["E11.9"]] | has[:, col["E11.65"]]
    flags = (diabetic, has[:, col["N18.30"]], has[:, col["E78.5"]])
    enc, panel, day = _panel_draws(rng, E, diabetic)
    # one specimen per (encounter, panel, day): all tests of the panel share its time
    n_draw = len(enc)
    first_draw = np.where(E.cls[enc] == INP, rng.integers(HOUR, 5 * HOUR, n_draw),
                          rng.integers(10 * MINUTE, 50 * MINUTE, n_draw))
    drawn = np.minimum(E.admit[enc] + day * DAY + first_draw, np.maximum(E.end[enc],
                                                                        E.admit[enc]))
    resulted = drawn + rng.integers(20 * MINUTE, 3 * HOUR, n_draw)
    sizes = np.array([len(PANELS[p]) for p in PANELS])[panel]
    tests = np.concatenate([np.array(PANELS[p], dtype=object) for p in PANELS])
    offsets = np.concatenate([[0], np.cumsum([len(PANELS[p]) for p in PANELS])])[panel]
    row_draw = np.repeat(np.arange(n_draw), sizes)
    within = np.arange(len(row_draw)) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    code = tests[offsets[row_draw] + within]
    enc_r = enc[row_draw]
    pat = E.patient[enc_r]
    m = len(code)
    value = _values(rng, code, pat, E.cls[enc_r] == INP, flags)
    table = [LOINC[c] for c in code.tolist()]
    final = {
        "lab_result_id": [f"LAB{i + 1:010d}" for i in range(m)],
        "encounter_id": E.ids[enc_r], "patient_id": patient_ids[pat],
        "loinc_code": code, "test_name": [t.name for t in table],
        "value": obj(value), "unit": [t.unit for t in table],
        "ref_low": [t.ref_low for t in table], "ref_high": [t.ref_high for t in table],
        "result_ts": ts_col(resulted[row_draw]),
    }
    v = inserts(final, resulted[row_draw] + rng.integers(MINUTE, 2 * HOUR, m))
    fix = np.flatnonzero(rng.random(m) < CORRECTION_P)
    corr = v.take(latest(v, fix))
    redo = value[fix] * rng.uniform(0.85, 1.15, len(fix))
    corr.set(value=[round(float(x), table[i].decimals) for x, i in zip(redo, fix.tolist(), strict=True)])
    corr.as_op("U", corr.ts + rng.integers(HOUR, 3 * DAY, len(fix)))
    v = random_deletes(concat([v, corr]), RANDOM_DELETE_P, rng, HOUR, 5 * DAY)
    return v, enc_r
