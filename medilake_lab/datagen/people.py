"""Patients: demographics, registrations, demographic changes (SCD2 fodder) and merges.

Patient ``i`` (0-based) is ``PAT{i+1:06d}`` / ``MRN-SYN-{i+1:06d}``. Most patients registered
before the event window; some register during it (their inserts land in later batches). In the
CDC batches a share of patients move house, change insurer or change last name: each change is an
op U version whose ``updated_at`` is the change time. A few duplicate registrations (copies of a
real patient's demographics under a new id) are created and later deleted (op D, merged).

Some insured patients' coverage goes on hold: in batch 002's window their member id is removed
(``insurance_member_id`` value → null, nothing else changes) and in batch 003's window the same id
is restored (null → value). These are the SCD2 changes that a ``=``/``<>`` comparison misses
(``NULL <> 'x'`` is NULL, not true); they are drawn last, after every other patient draw, and
only for patients without another demographic change, so each is a version of its own.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from medilake_lab.datagen.frame import Versions, concat, inserts
from medilake_lab.datagen.pools import Pools
from medilake_lab.datagen.timeline import (
    AS_OF_DATE,
    DAY,
    END_TS,
    HOUR,
    START_TS,
    cdc_start,
    date_col,
    epoch,
    obj,
)

PATIENTS_PER_SCALE = 1500
#: Generic or obviously fictional payer names.
PAYERS = ("Medicare", "Medicaid", "Blue Cross Synthetic", "Aetna Synthetic",
          "United Synthetic Health", "Cigna Synthetic", "Self-pay")
AREA_CODES = ("206", "253", "360", "425", "503", "509", "541", "208", "406", "971")
#: Per-patient probability of each demographic change during the CDC batches.
CHANGE_RATES = {"address": 0.06, "insurance": 0.045, "last_name": 0.05}
#: Share of patients whose coverage goes on hold in batch 002 and is restored in batch 003 (at least one).
COVERAGE_HOLD_RATE = 0.01
DUPLICATE_REGISTRATION_RATE = 0.004


@dataclass
class Patients:
    """Patient versions plus the facts other feeds need.

    Attributes
    ----------
    versions: all patient versions (inserts, demographic changes, merge deletes).
    n: number of real patients (entities ``0..n-1``; duplicates follow).
    ids: ``patient_id`` per real patient.
    birth: birth instant (epoch seconds, midnight UTC) per real patient.
    sex: ``"F"``/``"M"``/``"U"`` per real patient.
    registered: registration instant per real patient.
    changes: number of demographic changes by kind (coverage holds and restores count as
        ``insurance`` changes).
    null_changes: how many of them change tracked attributes only from or to null:
        ``{"to_null": n, "from_null": n}``.
    """

    versions: Versions
    n: int
    ids: np.ndarray
    birth: np.ndarray
    sex: np.ndarray
    registered: np.ndarray
    changes: dict[str, int]
    null_changes: dict[str, int]


def _phones(rng: np.random.Generator, n: int) -> list[str]:
    area = rng.choice(AREA_CODES, n)
    line = rng.integers(0, 100, n)
    return [f"{a}-555-01{x:02d}" for a, x in zip(area.tolist(), line.tolist(), strict=True)]


def _member_ids(rng: np.random.Generator, n: int) -> list[str]:
    return [f"MBR-SYN-{x:09d}" for x in rng.integers(0, 10**9, n).tolist()]


def _payers(rng: np.random.Generator, age: np.ndarray) -> np.ndarray:
    """Payer index per patient, by age band."""
    p_senior = [0.78, 0.04, 0.06, 0.04, 0.04, 0.02, 0.02]
    p_child = [0.0, 0.42, 0.18, 0.14, 0.14, 0.08, 0.04]
    p_adult = [0.02, 0.14, 0.26, 0.18, 0.2, 0.12, 0.08]
    out = np.empty(len(age), dtype=np.int64)
    for mask, p in ((age >= 65, p_senior), (age < 19, p_child), ((age >= 19) & (age < 65), p_adult)):
        out[mask] = rng.choice(len(PAYERS), int(mask.sum()), p=p)
    return out


def build_patients(rng: np.random.Generator, pools: Pools, scale: float) -> Patients:
    """Build patient versions for ``round(1500 * scale)`` patients (at least 10)."""
    n = max(10, round(PATIENTS_PER_SCALE * scale))
    as_of = epoch(AS_OF_DATE)
    # adult-heavy ages 0-95
    band = rng.choice(4, n, p=[0.15, 0.32, 0.30, 0.23])
    lo, hi = np.array([0, 18, 45, 65])[band], np.array([18, 45, 65, 96])[band]
    age_days = (rng.uniform(lo, hi) * 365.25).astype(np.int64)
    birth = (as_of - age_days * DAY) // DAY * DAY
    age = age_days / 365.25
    sex = rng.choice(np.array(["F", "M", "U"]), n, p=[0.505, 0.488, 0.007])
    female = (sex == "F") | ((sex == "U") & (rng.random(n) < 0.5))
    first = np.where(female, rng.choice(pools.first_female, n), rng.choice(pools.first_male, n))
    last = rng.choice(pools.last, n)
    street = rng.choice(pools.streets, n)
    loc = rng.integers(0, len(pools.localities), n)
    city, state, zip_ = (np.array([x[i] for x in pools.localities])[loc] for i in range(3))
    payer = _payers(rng, age)
    member = obj(_member_ids(rng, n))
    member[payer == PAYERS.index("Self-pay")] = None
    # registration: most before the event window, some during it; never before birth
    early = rng.random(n) < 0.86
    reg = np.where(early, rng.integers(epoch("2019-01-01"), START_TS, n),
                   rng.integers(START_TS, END_TS - 10 * DAY, n))
    reg = np.maximum(reg, birth + rng.integers(2 * HOUR, 2 * DAY, n))
    reg = np.minimum(reg, END_TS - 5 * DAY)
    ids = np.array([f"PAT{i + 1:06d}" for i in range(n)], dtype=object)
    base = inserts({
        "patient_id": ids,
        "mrn": [f"MRN-SYN-{i + 1:06d}" for i in range(n)],
        "first_name": first, "last_name": last, "sex": sex,
        "birth_date": date_col(birth),
        "address_line": street, "city": city, "state": state, "zip": zip_,
        "phone": _phones(rng, n),
        "insurance_payer": np.array(PAYERS, dtype=object)[payer],
        "insurance_member_id": member,
    }, reg)
    changes, counts = _demographic_changes(rng, pools, base, reg, female, age)
    dups = _duplicate_registrations(rng, base, n)
    holds = _coverage_holds(rng, base, reg, np.unique(changes.ent))
    counts["insurance"] += len(holds)
    null_changes = {"to_null": len(holds) // 2, "from_null": len(holds) // 2}
    return Patients(concat([base, changes, dups, holds]), n, ids, birth, sex, reg, counts, null_changes)


def _demographic_changes(rng, pools, base: Versions, reg, female, age):
    """Op U versions for address / insurance / last-name changes in the CDC windows."""
    n = len(base)
    first_cdc = epoch(cdc_start("002"))
    events = []  # (time, patient, kind)
    for kind, rate in CHANGE_RATES.items():
        eligible = reg < END_TS - 3 * DAY
        if kind == "last_name":
            eligible &= female & (age >= 20) & (age < 60)
        who = np.flatnonzero(eligible & (rng.random(n) < rate))
        lo = np.maximum(reg[who] + DAY, first_cdc)
        t = lo + (rng.random(len(who)) * (END_TS - HOUR - lo)).astype(np.int64)
        events += [(int(ti), int(p), kind) for ti, p in zip(t, who, strict=True)]
    events.sort()
    counts = {k: 0 for k in CHANGE_RATES}
    if not events:
        return base.take(np.zeros(0, dtype=np.int64)), counts
    t = np.array([e[0] for e in events], dtype=np.int64)
    who = np.array([e[1] for e in events], dtype=np.int64)
    # each change starts from the patient's previous state (events are in time order)
    state = {c: base.cols[c].copy() for c in ("address_line", "city", "zip", "last_name",
                                             "insurance_payer", "insurance_member_id")}
    rows = base.take(who)
    new_street = rng.choice(pools.streets, len(events))
    new_loc = rng.integers(0, len(pools.localities), len(events))
    new_last = rng.choice(pools.last, len(events))
    new_payer = rng.integers(0, len(PAYERS) - 1, len(events))
    new_member = _member_ids(rng, len(events))
    out: dict[str, list[object]] = {c: [] for c in state}
    for i, (_, p, kind) in enumerate(events):
        if kind == "address":
            city, st, z = pools.localities[new_loc[i]]
            if st != base.cols["state"][p]:  # moves stay within the state
                same = [x for x in pools.localities if x[1] == base.cols["state"][p]]
                city, st, z = same[new_loc[i] % len(same)]
            state["address_line"][p], state["city"][p], state["zip"][p] = new_street[i], city, z
        elif kind == "insurance":
            payer = PAYERS[new_payer[i]]
            if payer == state["insurance_payer"][p]:
                payer = PAYERS[(new_payer[i] + 1) % (len(PAYERS) - 1)]
            state["insurance_payer"][p], state["insurance_member_id"][p] = payer, new_member[i]
        else:
            new = new_last[i]
            state["last_name"][p] = new if new != state["last_name"][p] else new + "-Lee"
        counts[kind] += 1
        for c in state:
            out[c].append(state[c][p])
    rows.set(**out)
    return rows.as_op("U", t), counts


def _duplicate_registrations(rng, base: Versions, n: int) -> Versions:
    """Copies of real patients under new ids, deleted (merged) a few days later."""
    k = max(1, round(DUPLICATE_REGISTRATION_RATE * n))
    src = rng.choice(n, k, replace=False)
    rows = base.take(src)
    ent = np.arange(n, n + k, dtype=np.int64)
    rows.ent = ent
    rows.set(patient_id=[f"PAT{e + 1:06d}" for e in ent.tolist()],
             mrn=[f"MRN-SYN-{e + 1:06d}" for e in ent.tolist()])
    t_reg = rng.integers(epoch("2025-03-01"), END_TS - 20 * DAY, k)
    rows.as_op("I", t_reg)
    dels = rows.take(np.arange(k)).as_op("D", t_reg + rng.integers(DAY, 14 * DAY, k))
    return concat([rows, dels])



def _coverage_holds(rng, base: Versions, reg, changed: np.ndarray) -> Versions:
    """Op U versions of insured patients (registered before the CDC batches, no other demographic
    change: ``changed`` lists those with one) whose member id is removed at a time in batch
    002's window and restored at a time in batch 003's window; the removals come first."""
    n = len(base)
    member = base.cols["insurance_member_id"]
    eligible = np.array([m is not None for m in member.tolist()], dtype=bool)
    eligible &= reg < epoch(cdc_start("002")) - DAY
    eligible[changed[changed < n]] = False
    cand = np.flatnonzero(eligible)
    k = min(len(cand), max(1, round(COVERAGE_HOLD_RATE * n)))
    who = np.sort(rng.choice(cand, k, replace=False)) if k else cand
    windows = [(epoch(cdc_start("002")), epoch(cdc_start("003"))), (epoch(cdc_start("003")), END_TS - HOUR)]
    t_hold, t_back = ((lo + (rng.random(k) * (hi - lo)).astype(np.int64)) for lo, hi in windows)
    hold = base.take(who).set(insurance_member_id=[None] * k).as_op("U", t_hold)
    return concat([hold, base.take(who).as_op("U", t_back)])
