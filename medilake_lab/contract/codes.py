"""Clinical code tables used by the synthetic feeds and validated in silver.

Small, hand-picked subsets of four real code systems. Every code below is a real, current code
of its system; everything else about a row (descriptions, flags, reference ranges, distribution
parameters) is our own wording or our own teaching values, not copied from the publishers.

Sources
-------
- ICD-10-CM: the CMS / NCHS ICD-10-CM code set (FY2025 release); descriptions are our own
  short paraphrases. ``chronic`` marks conditions that persist once diagnosed; ``category`` is
  the three-character ICD-10-CM category (first three characters of the code).
- CPT: AMA Current Procedural Terminology code *numbers* only. CPT descriptors are AMA
  copyright, so every description here is our own short wording.
- LOINC: LOINC codes from Regenstrief Institute (loinc.org), used under the LOINC licence;
  test names are our own short names, units are UCUM. Reference ranges are typical adult
  ranges chosen for teaching, not clinical advice; ``dist_*`` fields parameterise the
  synthetic value distribution (see :class:`LoincTest`).
- RxNorm: NLM RxNorm concept unique identifiers (RXCUI) for semantic clinical drugs (SCD);
  names are shortened, dose/route/frequency are our typical adult sig.

The public helper :func:`is_valid_code` answers whether a code belongs to one of the tables.
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: Code-system names as used in ``feeds.Feed.code_system``.
ICD10_SYSTEM, CPT_SYSTEM, LOINC_SYSTEM, RXNORM_SYSTEM = "ICD-10-CM", "CPT", "LOINC", "RxNorm"


@dataclass(frozen=True)
class Icd10Code:
    """One ICD-10-CM diagnosis code.

    Attributes
    ----------
    code: the code with its dot, e.g. ``"E11.9"``.
    description: our own short description.
    chronic: True for conditions that persist once diagnosed (never resolved in the feeds).
    category: the three-character category (``code[:3]``), derived.
    """

    code: str
    description: str
    chronic: bool
    category: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "category", self.code[:3])


@dataclass(frozen=True)
class CptCode:
    """One CPT procedure code (number from AMA CPT, description in our own words)."""

    code: str
    description: str


@dataclass(frozen=True)
class LoincTest:
    """One LOINC laboratory test with a UCUM unit and an adult reference range.

    Synthetic values are drawn as ``dist_center + dist_spread * z`` (``dist_log=False``) or
    ``dist_center * exp(dist_spread * z)`` (``dist_log=True``), ``z ~ N(0, 1)``, then rounded
    to ``decimals``. The parameters give roughly 5–30 % of results outside
    ``[ref_low, ref_high]`` per test before disease effects.
    """

    code: str
    name: str
    unit: str
    ref_low: float
    ref_high: float
    dist_center: float
    dist_spread: float
    dist_log: bool
    decimals: int


@dataclass(frozen=True)
class RxNormDrug:
    """One RxNorm clinical drug (SCD) with a typical adult dose, route and frequency."""

    code: str
    name: str
    dose: float
    dose_unit: str
    route: str
    frequency: str


def _table(rows):
    return {r.code: r for r in rows}


ICD10_CM: dict[str, Icd10Code] = _table([
    # chronic conditions (persist once diagnosed)
    Icd10Code("E11.9", "Type 2 diabetes without complications", True),
    Icd10Code("E11.65", "Type 2 diabetes with hyperglycemia", True),
    Icd10Code("I10", "Essential (primary) hypertension", True),
    Icd10Code("E78.5", "Hyperlipidemia, unspecified", True),
    Icd10Code("J44.9", "COPD, unspecified", True),
    Icd10Code("J45.909", "Asthma, unspecified, uncomplicated", True),
    Icd10Code("N18.30", "Chronic kidney disease stage 3, unspecified", True),
    Icd10Code("I50.9", "Heart failure, unspecified", True),
    Icd10Code("I48.91", "Atrial fibrillation, unspecified", True),
    Icd10Code("I25.10", "Coronary artery disease of native vessel, no angina", True),
    Icd10Code("F32.9", "Major depressive disorder, single episode, unspecified", True),
    Icd10Code("F41.1", "Generalized anxiety disorder", True),
    Icd10Code("E03.9", "Hypothyroidism, unspecified", True),
    Icd10Code("E66.9", "Obesity, unspecified", True),
    Icd10Code("G47.33", "Obstructive sleep apnea", True),
    Icd10Code("K21.9", "Gastro-esophageal reflux without esophagitis", True),
    Icd10Code("M17.11", "Primary osteoarthritis, right knee", True),
    Icd10Code("M16.11", "Primary osteoarthritis, right hip", True),
    # acute problems and encounter reasons (resolve)
    Icd10Code("J18.9", "Pneumonia, organism unspecified", False),
    Icd10Code("N39.0", "Urinary tract infection, site not specified", False),
    Icd10Code("S72.001A", "Fracture of right femoral neck, initial encounter, closed", False),
    Icd10Code("K35.80", "Acute appendicitis, unspecified", False),
    Icd10Code("I21.4", "Non-ST elevation myocardial infarction (NSTEMI)", False),
    Icd10Code("J06.9", "Acute upper respiratory infection, unspecified", False),
    Icd10Code("J02.9", "Acute pharyngitis, unspecified", False),
    Icd10Code("J20.9", "Acute bronchitis, unspecified", False),
    Icd10Code("J11.1", "Influenza with other respiratory manifestations, virus unidentified",
              False),
    Icd10Code("U07.1", "COVID-19", False),
    Icd10Code("A09", "Infectious gastroenteritis and colitis, unspecified", False),
    Icd10Code("A41.9", "Sepsis, organism unspecified", False),
    Icd10Code("N17.9", "Acute kidney failure, unspecified", False),
    Icd10Code("I63.9", "Cerebral infarction, unspecified", False),
    Icd10Code("K80.20", "Gallbladder stone without cholecystitis or obstruction", False),
    Icd10Code("K57.30", "Diverticulosis of large intestine, no perforation or bleeding", False),
    Icd10Code("L03.115", "Cellulitis of right lower limb", False),
    Icd10Code("R07.9", "Chest pain, unspecified", False),
    Icd10Code("R10.9", "Abdominal pain, unspecified", False),
    Icd10Code("R51.9", "Headache, unspecified", False),
    Icd10Code("R55", "Syncope and collapse", False),
    Icd10Code("M54.50", "Low back pain, unspecified", False),
    Icd10Code("M25.561", "Pain in right knee", False),
    Icd10Code("S93.401A", "Sprain of right ankle ligament, initial encounter", False),
    Icd10Code("S06.0X0A", "Concussion without loss of consciousness, initial encounter", False),
    Icd10Code("Z00.00", "General adult medical exam, no abnormal findings", False),
    Icd10Code("Z23", "Encounter for immunization", False),
])

CPT: dict[str, CptCode] = _table([
    CptCode("99203", "New patient office visit, low complexity"),
    CptCode("99213", "Established patient office visit, low complexity"),
    CptCode("99214", "Established patient office visit, moderate complexity"),
    CptCode("99283", "Emergency department visit, moderate severity"),
    CptCode("99284", "Emergency department visit, high severity"),
    CptCode("99285", "Emergency department visit, highest severity"),
    CptCode("99223", "First hospital day care, high complexity"),
    CptCode("99232", "Later hospital day care, moderate complexity"),
    CptCode("99238", "Hospital discharge day management"),
    CptCode("93000", "Twelve-lead ECG with read and report"),
    CptCode("93306", "Complete transthoracic echo with Doppler"),
    CptCode("71046", "Chest X-ray, two views"),
    CptCode("70450", "Head CT without contrast"),
    CptCode("74177", "Abdomen and pelvis CT with contrast"),
    CptCode("73610", "Ankle X-ray, three or more views"),
    CptCode("80053", "Comprehensive metabolic panel"),
    CptCode("85025", "Complete blood count with automated differential"),
    CptCode("80061", "Lipid panel"),
    CptCode("83036", "Hemoglobin A1c"),
    CptCode("36415", "Venous blood draw"),
    CptCode("90471", "Vaccine administration, single"),
    CptCode("90686", "Flu vaccine, quadrivalent, preservative-free, intramuscular"),
    CptCode("12001", "Simple wound repair, up to 2.5 cm"),
    CptCode("27130", "Total hip replacement"),
    CptCode("27447", "Total knee replacement"),
    CptCode("44970", "Laparoscopic appendix removal"),
    CptCode("47562", "Laparoscopic gallbladder removal"),
    CptCode("92928", "Coronary stent placement, one vessel, percutaneous"),
    CptCode("45378", "Diagnostic colonoscopy"),
    CptCode("43239", "Upper GI endoscopy with biopsy"),
])

LOINC: dict[str, LoincTest] = _table([
    #          code       name                     unit       low    high  center spread log  dec
    LoincTest("2345-7", "Glucose, serum/plasma", "mg/dL", 70.0, 99.0, 87.0, 0.1, True, 0),
    LoincTest("2951-2", "Sodium, serum/plasma", "mmol/L", 136.0, 145.0, 140.0, 3.0, False, 0),
    LoincTest("2823-3", "Potassium, serum/plasma", "mmol/L", 3.5, 5.1, 4.3, 0.5, False, 1),
    LoincTest("3094-0", "Urea nitrogen (BUN), serum/plasma", "mg/dL", 7.0, 20.0, 13.0, 0.28,
              True, 0),
    LoincTest("2160-0", "Creatinine, serum/plasma", "mg/dL", 0.6, 1.3, 0.9, 0.2, True, 2),
    LoincTest("17861-6", "Calcium, serum/plasma", "mg/dL", 8.6, 10.3, 9.45, 0.55, False, 1),
    LoincTest("718-7", "Hemoglobin, blood", "g/dL", 12.0, 17.5, 14.3, 1.75, False, 1),
    LoincTest("6690-2", "White blood cell count, blood", "10*3/uL", 4.5, 11.0, 7.0, 0.24,
              True, 1),
    LoincTest("777-3", "Platelet count, blood", "10*3/uL", 150.0, 450.0, 262.0, 75.0, False, 0),
    LoincTest("4548-4", "Hemoglobin A1c, blood", "%", 4.0, 5.6, 5.2, 0.3, False, 1),
    LoincTest("2093-3", "Cholesterol, total, serum/plasma", "mg/dL", 100.0, 199.0, 172.0, 27.0,
              False, 0),
    LoincTest("2571-8", "Triglycerides, serum/plasma", "mg/dL", 0.0, 149.0, 105.0, 0.36, True, 0),
    LoincTest("13457-7", "LDL cholesterol, calculated", "mg/dL", 0.0, 99.0, 84.0, 22.0, False, 0),
    LoincTest("2085-9", "HDL cholesterol, serum/plasma", "mg/dL", 40.0, 90.0, 56.0, 12.0, False,
              0),
    LoincTest("1742-6", "ALT, serum/plasma", "U/L", 7.0, 56.0, 24.0, 0.5, True, 0),
    LoincTest("1920-8", "AST, serum/plasma", "U/L", 8.0, 48.0, 22.0, 0.45, True, 0),
    LoincTest("3016-3", "TSH, serum/plasma", "m[IU]/L", 0.4, 4.0, 1.6, 0.6, True, 2),
])

RXNORM: dict[str, RxNormDrug] = _table([
    RxNormDrug("860975", "metformin ER 500 mg tablet", 500.0, "mg", "oral", "once daily"),
    RxNormDrug("314076", "lisinopril 10 mg tablet", 10.0, "mg", "oral", "once daily"),
    RxNormDrug("314077", "lisinopril 20 mg tablet", 20.0, "mg", "oral", "once daily"),
    RxNormDrug("197361", "amlodipine 5 mg tablet", 5.0, "mg", "oral", "once daily"),
    RxNormDrug("308135", "amlodipine 10 mg tablet", 10.0, "mg", "oral", "once daily"),
    RxNormDrug("310798", "hydrochlorothiazide 25 mg tablet", 25.0, "mg", "oral", "once daily"),
    RxNormDrug("617310", "atorvastatin 20 mg tablet", 20.0, "mg", "oral", "once daily"),
    RxNormDrug("259255", "atorvastatin 80 mg tablet", 80.0, "mg", "oral", "once daily"),
    RxNormDrug("312961", "simvastatin 20 mg tablet", 20.0, "mg", "oral", "once daily at bedtime"),
    RxNormDrug("866924", "metoprolol tartrate 25 mg tablet", 25.0, "mg", "oral", "twice daily"),
    RxNormDrug("310429", "furosemide 20 mg tablet", 20.0, "mg", "oral", "once daily"),
    RxNormDrug("313988", "furosemide 40 mg tablet", 40.0, "mg", "oral", "once daily"),
    RxNormDrug("313096", "spironolactone 25 mg tablet", 25.0, "mg", "oral", "once daily"),
    RxNormDrug("855332", "warfarin sodium 5 mg tablet", 5.0, "mg", "oral", "once daily"),
    RxNormDrug("309362", "clopidogrel 75 mg tablet", 75.0, "mg", "oral", "once daily"),
    RxNormDrug("243670", "aspirin 81 mg tablet", 81.0, "mg", "oral", "once daily"),
    RxNormDrug("312940", "sertraline 25 mg tablet", 25.0, "mg", "oral", "once daily"),
    RxNormDrug("745679", "albuterol 90 mcg/actuation inhaler", 180.0, "mcg", "inhalation",
               "every 4 hours as needed"),
    RxNormDrug("310965", "ibuprofen 200 mg tablet", 400.0, "mg", "oral",
               "every 6 hours as needed"),
    RxNormDrug("313782", "acetaminophen 325 mg tablet", 650.0, "mg", "oral",
               "every 6 hours as needed"),
    RxNormDrug("562251", "amoxicillin 250 mg / clavulanate 125 mg tablet", 1.0, "tablet",
               "oral", "three times daily"),
    RxNormDrug("312617", "prednisone 5 mg tablet", 40.0, "mg", "oral", "once daily"),
])

#: Code system name → table.
CODE_TABLES: dict[str, dict] = {
    ICD10_SYSTEM: ICD10_CM,
    CPT_SYSTEM: CPT,
    LOINC_SYSTEM: LOINC,
    RXNORM_SYSTEM: RXNORM,
}


def is_valid_code(system: str, code: str | None) -> bool:
    """Whether ``code`` is in the table of ``system``.

    Parameters
    ----------
    system: one of ``"ICD-10-CM"``, ``"CPT"``, ``"LOINC"``, ``"RxNorm"``.
    code: the code as delivered (exact, case-sensitive string match); None is never valid.

    Returns
    -------
    bool: True when the code is a key of the system's table.

    Raises
    ------
    ValueError: ``system`` is not one of the four known systems.
    """
    try:
        table = CODE_TABLES[system]
    except KeyError:
        raise ValueError(f"unknown code system {system!r}; expected one of "
                         f"{', '.join(CODE_TABLES)}") from None
    return code is not None and code in table
