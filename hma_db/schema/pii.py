"""Guess which columns hold personal data, from their names and, where the name is not enough,
from a small sample of their values.

The guess is a Faker provider name, which is also the column's sdtype in SDV's metadata layout
(``email``, ``first_name``, ``phone_number``...). Users override any guess in the metadata.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

import pandas as pd

# Name patterns, tried in order; the first match wins. Patterns match the column name after it is
# split into lower-case words (``BillingAddress`` -> ``billing address``, ``e_mail`` -> ``e mail``).
_NAME_RULES: list[tuple[str, str]] = [
    (r"\be ?mail( address)?\b", "email"),
    (r"\b(first|given|fore) ?name\b", "first_name"),
    (r"\b(last|family|sur) ?name\b|\bsurname\b", "last_name"),
    (r"\b(user ?name|login|nick ?name)\b", "user_name"),
    (r"\b(contact|full|customer|person|employee) name\b", "name"),
    (r"\b(company|organi[sz]ation|employer) ?(name)?\b", "company"),
    (r"\b(phone|telephone|tel|mobile|cell|fax)( ?(number|no|num))?\b", "phone_number"),
    (r"\b(ssn|social security( number)?)\b", "ssn"),
    (r"\biban\b", "iban"),
    (r"\b(credit ?card|card ?number|cc ?number)\b", "credit_card_number"),
    (r"\b(ip|ip ?address|ipv4)\b", "ipv4"),
    (r"\b(url|website|web ?site|homepage|home ?page)\b", "url"),
    (r"\b(zip|postal|post) ?(code)?\b|\bzipcode\b|\bpostcode\b", "postcode"),
    (r"\b(street|address|addr)( ?line)?( ?\d)?\b", "street_address"),
    (r"\b(city|town)\b", "city"),
    (r"\b(state|province|region)\b", "state"),
    (r"\bcountry\b", "country"),
    (r"\b(birth ?date|date of birth|dob|birthday)\b", "date_of_birth"),
]

# Content patterns for text columns whose name says nothing.
_VALUE_RULES: list[tuple[str, str]] = [
    (r"^[\w.+-]+@[\w-]+(\.[\w-]+)+$", "email"),
    (r"^(\d{1,3}\.){3}\d{1,3}$", "ipv4"),  # before phone numbers, whose pattern allows dots
    # Card numbers and IBANs before phone numbers too ('4111 1111 1111 1111' fits a phone's).
    (r"^\d{4}([ -]\d{4}){3}$", "credit_card_number"),
    (r"^[A-Z]{2}\d{2}( ?[A-Z0-9]{4}){2,7}( ?[A-Z0-9]{1,4})?$", "iban"),
    # At least 7 digits, and not a date or a month written as text ('2026-01', '2024-01-05':
    # a payslip's period came out as phone numbers).
    (r"^(?!\d{4}[-/.]\d{1,2}([-/.]\d{1,2})?$)(?=(\D*\d){7})\+?[\d\s().-]{7,20}$",
     "phone_number"),
    (r"^https?://\S+$", "url"),
]

# Personal-data sdtypes that are dates rather than strings.
DATE_PII = {"date_of_birth"}


def words(name: str) -> str:
    """Split a column name into lower-case words: ``BillingPostalCode`` -> ``billing postal code``."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", " ", name)
    return re.sub(r"[\W_]+", " ", spaced).strip().lower()


def guess_from_name(column_name: str) -> str | None:
    """Return the Faker provider a column name suggests, or None."""
    text = words(column_name)
    for pattern, provider in _NAME_RULES:
        if re.search(pattern, text):
            return provider
    return None


def guess_from_values(values: Iterable[object], *, threshold: float = 0.9) -> str | None:
    """Return the Faker provider that at least ``threshold`` of the non-null text values match."""
    sample = pd.Series(list(values), dtype="object").dropna().astype(str)
    if sample.empty:
        return None
    for pattern, provider in _VALUE_RULES:
        if sample.str.match(pattern).mean() >= threshold:
            return provider
    return None


@lru_cache(maxsize=1)
def _faker():
    from faker import Faker

    return Faker("en_US")


# SDV's sdtypes whose Faker method has another name.
SDTYPE_METHODS = {"postal_code": "postcode", "ipv4_address": "ipv4", "ipv6_address": "ipv6"}


def faker_method(sdtype: str) -> str:
    """The Faker method of a personal-data sdtype (most are named alike)."""
    return SDTYPE_METHODS.get(sdtype, sdtype)


def is_faker_provider(name: str) -> bool:
    """True when ``name`` is a Faker provider method, or an SDV sdtype naming one (so it can
    serve as a personal-data sdtype)."""
    if not isinstance(name, str) or name.startswith("_"):
        return False
    try:
        return callable(getattr(_faker(), faker_method(name)))
    except AttributeError:
        return False
