"""Which conditions patients have and which codes fit which kind of encounter.

Chronic conditions are assigned once per patient (age-dependent prevalence) and persist: every
later diagnosis of the same condition repeats the code with the same onset date. Acute problems
are drawn per encounter from lists that fit the encounter class.
"""

from __future__ import annotations

import numpy as np

from medilake_lab.contract.codes import ICD10_CM, RXNORM
from medilake_lab.datagen.timeline import END_TS, epoch

EARLIEST_ONSET = epoch("2012-01-01")

#: Chronic condition → (base prevalence for ages 40-64, minimum age).
CHRONIC_PREVALENCE: dict[str, tuple[float, int]] = {
    "I10": (0.30, 25), "E78.5": (0.24, 25), "E66.9": (0.12, 10), "E11.9": (0.09, 20),
    "E11.65": (0.03, 25), "K21.9": (0.08, 15), "F32.9": (0.08, 14), "F41.1": (0.06, 12),
    "J45.909": (0.07, 2), "E03.9": (0.05, 18), "J44.9": (0.05, 45), "I25.10": (0.05, 45),
    "G47.33": (0.04, 30), "N18.30": (0.04, 45), "M17.11": (0.04, 45), "I50.9": (0.03, 55),
    "I48.91": (0.03, 55), "M16.11": (0.02, 50),
}
CHRONIC_CODES: tuple[str, ...] = tuple(CHRONIC_PREVALENCE)
#: Prevalence multiplier by age band (<18, 18-39, 40-64, 65+); asthma is flat.
AGE_FACTOR = ((0, 18, 0.15), (18, 40, 0.45), (40, 65, 1.0), (65, 200, 1.7))

#: Acute primary diagnoses by encounter class, with weights.
ACUTE_BY_CLASS: dict[str, dict[str, float]] = {
    "ambulatory": {"J06.9": 5, "J02.9": 3, "Z00.00": 6, "Z23": 2, "M54.50": 3, "N39.0": 2,
                   "J20.9": 2, "M25.561": 2, "J11.1": 1, "U07.1": 1, "R51.9": 1},
    "outpatient": {"K57.30": 3, "K21.9": 0, "M25.561": 2, "R10.9": 2, "R07.9": 2, "M54.50": 2,
                   "K80.20": 1, "Z00.00": 1},
    "emergency": {"R07.9": 4, "R10.9": 4, "J18.9": 2, "N39.0": 2, "R51.9": 2, "S93.401A": 2,
                  "S06.0X0A": 1, "L03.115": 1, "J20.9": 1, "A09": 2, "R55": 1, "U07.1": 1,
                  "J11.1": 1, "M54.50": 2, "J06.9": 1},
    "inpatient": {"J18.9": 5, "I21.4": 3, "S72.001A": 2, "K35.80": 2, "N17.9": 2, "A41.9": 3,
                  "I63.9": 2, "K80.20": 2, "L03.115": 1, "N39.0": 2, "U07.1": 1},
}
#: Chronic conditions that are a typical primary reason for a hospital stay.
INPATIENT_CHRONIC = ("I50.9", "J44.9", "M17.11", "M16.11", "I48.91")

#: Long-term drugs started for a chronic condition (RxNorm codes, first = most common).
CHRONIC_DRUGS: dict[str, tuple[str, ...]] = {
    "E11.9": ("860975",), "E11.65": ("860975",),
    "I10": ("314076", "197361", "310798", "314077", "308135"),
    "E78.5": ("617310", "312961", "259255"),
    "I50.9": ("313988", "310429", "313096"),
    "I48.91": ("855332", "866924"),
    "I25.10": ("243670", "309362"),
    "J45.909": ("745679",), "J44.9": ("745679",),
    "F32.9": ("312940",), "F41.1": ("312940",),
}
#: Short-course drugs for acute problems (RxNorm code, course length in days).
ACUTE_DRUGS: dict[str, tuple[str, int]] = {
    "J18.9": ("562251", 7), "N39.0": ("562251", 5), "J20.9": ("562251", 5),
    "J02.9": ("562251", 10), "L03.115": ("562251", 10), "A41.9": ("562251", 10),
    "S72.001A": ("313782", 14), "S93.401A": ("310965", 7), "M54.50": ("310965", 10),
    "M25.561": ("310965", 10), "R51.9": ("313782", 5), "K35.80": ("313782", 7),
    "K80.20": ("313782", 7), "R10.9": ("313782", 5), "S06.0X0A": ("313782", 5),
    "J06.9": ("313782", 5), "J11.1": ("313782", 5), "U07.1": ("313782", 7),
}
#: Short prednisone burst for an exacerbation of a chronic lung condition.
EXACERBATION_DRUG = ("312617", 5)


def assign_chronic(rng: np.random.Generator, age_years: np.ndarray) -> np.ndarray:
    """Boolean matrix ``(n_patients, len(CHRONIC_CODES))``: who has which chronic condition.

    Conditions correlate mildly through a per-patient frailty factor.
    """
    n = len(age_years)
    factor = np.zeros(n)
    for lo, hi, f in AGE_FACTOR:
        factor[(age_years >= lo) & (age_years < hi)] = f
    frailty = rng.lognormal(0.0, 0.5, n)
    has = np.zeros((n, len(CHRONIC_CODES)), dtype=bool)
    for j, code in enumerate(CHRONIC_CODES):
        base, min_age = CHRONIC_PREVALENCE[code]
        scale = np.ones(n) if code == "J45.909" else factor * frailty
        has[:, j] = (age_years >= min_age) & (rng.random(n) < np.clip(base * scale, 0, 0.9))
    both_dm = has[:, CHRONIC_CODES.index("E11.9")] & has[:, CHRONIC_CODES.index("E11.65")]
    has[both_dm, CHRONIC_CODES.index("E11.65")] = False  # one diabetes code per patient
    return has


def onset_times(rng: np.random.Generator, has: np.ndarray, birth: np.ndarray,
                start: np.ndarray) -> np.ndarray:
    """Onset instant per (patient, chronic condition); ``-1`` where the patient lacks it.

    About two thirds of conditions predate the patient's first possible visit (``start``);
    the rest are diagnosed during the event window.
    """
    n, k = has.shape
    min_age = np.array([CHRONIC_PREVALENCE[c][1] for c in CHRONIC_CODES]) * 365.25 * 86_400
    lo = np.maximum(birth[:, None] + min_age[None, :], float(EARLIEST_ONSET))
    hi = np.broadcast_to(start[:, None], (n, k)).astype(float)
    prevalent = (rng.random((n, k)) < 0.65) & (lo < hi)
    u = rng.random((n, k))
    before = lo + u * (hi - lo)
    during = hi + u * np.maximum(END_TS - 30 * 86_400 - hi, 0)
    onset = np.where(prevalent, before, during).astype(np.int64) // 86_400 * 86_400
    return np.where(has, onset, -1)


def weighted(table: dict[str, float]) -> tuple[np.ndarray, np.ndarray]:
    """``(codes, probabilities)`` arrays of a weight table (zero weights dropped)."""
    codes = [c for c, w in table.items() if w > 0]
    w = np.array([table[c] for c in codes], dtype=float)
    return np.array(codes, dtype=object), w / w.sum()


_unknown = [c for t in (CHRONIC_CODES, *ACUTE_BY_CLASS.values(), *CHRONIC_DRUGS.values())
            for c in t if c not in ICD10_CM and c not in RXNORM]
if _unknown or not all(ICD10_CM[c].chronic for c in CHRONIC_CODES):  # pragma: no cover
    raise RuntimeError(f"condition tables use codes missing from medilake_lab.contract.codes: {_unknown}")
