"""A small, sourced SNOMED CT → ICD-10-CM / CPT crosswalk for the Synthea importer.

Synthea codes conditions and procedures in SNOMED CT; our feeds carry ICD-10-CM (diagnoses)
and CPT (procedures). This table maps only the SNOMED CT concepts that have a well-known,
one-to-one equivalent *inside our own code tables* (:mod:`medilake_lab.contract.codes`), so every mapped
row passes silver's code validation and every other row is honestly left unmapped.

Rules for an entry
------------------
- Same clinical meaning and the same specificity on both sides (no broader → narrower guess:
  a SNOMED "Colonoscopy" is not CPT 45378 "diagnostic colonoscopy", because Synthea records a
  polypectomy separately; a SNOMED "Sprain of ankle" has no laterality, ICD-10-CM needs one).
- The target is a code of our tables (``codes.ICD10_CM`` / ``codes.CPT``); real codes outside
  them (e.g. R73.03 prediabetes) are not targets — silver would reject them as invalid codes.
  :data:`EXCLUDED` lists such candidates and why they were left out.

Sources
-------
- ICD-10-CM targets: the NLM SNOMED CT to ICD-10-CM map (SNOMED CT US Edition, map refset
  6011000124106; rule-based map, default target for an adult, non-pregnant patient). The map is
  distributed under the UMLS/SNOMED CT affiliate licence, so it is not bundled; each entry below
  was chosen by hand and kept only where the map's default target is not in doubt.
- CPT targets: NLM publishes no SNOMED CT → CPT map. The one CPT entry is our own equivalence of
  the SNOMED CT concept with the CPT code's service (collection of venous blood by venipuncture),
  CPT code numbers from the AMA (descriptions in :mod:`medilake_lab.contract.codes` are our own words).
"""

from __future__ import annotations

from dataclasses import dataclass

from medilake_lab.contract.codes import CPT_SYSTEM, ICD10_SYSTEM

#: Name of the source code system as written into the feeds' ``source_code_system`` key.
SNOMED_SYSTEM = "SNOMED CT"

CROSSWALK_SOURCE = {
    ICD10_SYSTEM: "NLM SNOMED CT to ICD-10-CM map (US Edition, refset 6011000124106), "
                  "default targets, hand-picked",
    CPT_SYSTEM: "own equivalence of SNOMED CT concept and CPT service (NLM publishes no "
                "SNOMED CT to CPT map)",
}


@dataclass(frozen=True)
class Mapping:
    """One crosswalk entry.

    Attributes
    ----------
    snomed: SNOMED CT concept id (string of digits).
    snomed_term: the concept's name, for reading the table (not used in matching).
    target: the ICD-10-CM or CPT code (a key of the matching :mod:`medilake_lab.contract.codes` table).
    note: why the equivalence holds, where it needs a word.
    """

    snomed: str
    snomed_term: str
    target: str
    note: str = ""


SNOMED_TO_ICD10CM: dict[str, Mapping] = {m.snomed: m for m in (
    Mapping("59621000", "Essential hypertension", "I10"),
    Mapping("55822004", "Hyperlipidemia", "E78.5"),
    Mapping("44054006", "Diabetes mellitus type 2", "E11.9",
            "not in the bundled sample; Synthea's most common chronic disease code"),
    Mapping("53741008", "Coronary arteriosclerosis", "I25.10",
            "Synthea calls it 'Coronary Heart Disease'"),
    Mapping("10509002", "Acute bronchitis", "J20.9"),
    Mapping("840539006", "Disease caused by SARS-CoV-2", "U07.1",
            "not in the bundled sample; Synthea's COVID-19 module"),
    Mapping("62106007", "Concussion with no loss of consciousness", "S06.0X0A",
            "7th character A: the condition is recorded at the initial encounter"),
)}

SNOMED_TO_CPT: dict[str, Mapping] = {m.snomed: m for m in (
    Mapping("22778000", "Venipuncture", "36415", "not in the bundled sample"),
)}

#: Candidates seen in Synthea output that were deliberately NOT mapped: SNOMED id → reason.
EXCLUDED: dict[str, str] = {
    "195662009": "Acute viral pharyngitis: published crosswalks disagree (J02.9 vs J02.8)",
    "162864005": "Body mass index 30+ - obesity: a BMI finding (Z68.3x) or E66.9 — in doubt",
    "233678006": "Childhood asthma: default ICD-10-CM target in doubt",
    "185086009": "Chronic obstructive bronchitis: J44.9 vs J42 in doubt",
    "44465007": "Sprain of ankle: ICD-10-CM needs laterality (S93.409A, not in our table)",
    "239872002": "Osteoarthritis of hip: laterality unknown (M16.10, not in our table)",
    "22298006": "Myocardial infarction: I21.9, not in our table (our I21.4 is NSTEMI only)",
    "74400008": "Appendicitis: K37, not in our table (our K35.80 is acute appendicitis)",
    "15777000": "Prediabetes: R73.03, not in our table",
    "271737000": "Anemia: D64.9, not in our table",
    "40055000": "Chronic sinusitis: J32.9, not in our table",
    "444814009": "Viral sinusitis: J01.90, not in our table",
    "73761001": "Colonoscopy: broader than CPT 45378 (diagnostic only)",
    "399208008": "Chest X-ray: CPT needs the number of views (71045/71046)",
    "40701008": "Echocardiography: not necessarily a complete TTE with Doppler (93306)",
    "415070008": "Percutaneous coronary intervention: not necessarily a stent (92928)",
}

_TABLES: dict[str, dict[str, Mapping]] = {ICD10_SYSTEM: SNOMED_TO_ICD10CM,
                                          CPT_SYSTEM: SNOMED_TO_CPT}


def map_snomed(code: str | None, target_system: str) -> str | None:
    """The ICD-10-CM or CPT code for a SNOMED CT concept, or None when the crosswalk has none.

    Parameters
    ----------
    code: SNOMED CT concept id as delivered (surrounding spaces ignored).
    target_system: ``"ICD-10-CM"`` or ``"CPT"`` (``codes.ICD10_SYSTEM`` / ``codes.CPT_SYSTEM``).

    Returns
    -------
    str | None: the target code (a key of the matching table in :mod:`medilake_lab.contract.codes`).

    Raises
    ------
    ValueError: ``target_system`` is neither ICD-10-CM nor CPT.
    """
    try:
        table = _TABLES[target_system]
    except KeyError:
        raise ValueError(f"no crosswalk to {target_system!r}; expected one of "
                         f"{', '.join(_TABLES)}") from None
    entry = table.get(code.strip()) if code else None
    return entry.target if entry else None
