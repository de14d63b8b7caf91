"""Small pools of fake names and places, built once with a seeded Faker (en_US).

Faker is slow per call, so the generator draws a few hundred values once and then samples from
these pools with numpy. Every value is fictional; phone numbers are built elsewhere in the
reserved 555-01xx range.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from faker import Faker

#: States of the fictional MediLake service area (real abbreviations, fake cities and streets).
STATES = ("WA", "OR", "ID", "MT")


@dataclass(frozen=True)
class Pools:
    """Tuples of fake values to sample from.

    Attributes
    ----------
    first_female, first_male, last: given and family names.
    streets: street addresses (``"123 Main Street"``; some with an apartment).
    localities: ``(city, state, zip)`` triples; zips are 5-digit strings.
    """

    first_female: tuple[str, ...]
    first_male: tuple[str, ...]
    last: tuple[str, ...]
    streets: tuple[str, ...]
    localities: tuple[tuple[str, str, str], ...]


def _unique(make, n: int) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for _ in range(n * 20):
        seen.setdefault(make(), None)
        if len(seen) == n:
            break
    return tuple(seen)


@lru_cache(maxsize=4)
def build_pools(seed: int, n_names: int = 400, n_streets: int = 1500,
                n_localities: int = 48) -> Pools:
    """Draw the pools from Faker seeded with ``seed`` (deterministic for a Faker version).

    Parameters
    ----------
    seed: Faker seed.
    n_names: size of each first-name pool and of the last-name pool.
    n_streets: number of distinct street addresses.
    n_localities: number of distinct (city, state, zip) localities.
    """
    fake = Faker("en_US")
    fake.seed_instance(seed)
    first_f = _unique(fake.first_name_female, n_names)
    first_m = _unique(fake.first_name_male, n_names)
    last = _unique(fake.last_name, n_names)
    streets = _unique(fake.street_address, n_streets)
    cities = _unique(fake.city, n_localities)
    localities = tuple((city, STATES[i % len(STATES)], fake.zipcode_in_state(STATES[i % len(STATES)]))
                       for i, city in enumerate(cities))
    return Pools(first_f, first_m, last, streets, localities)
