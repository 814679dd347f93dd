"""Country codes from CLDR (``babel``), not a hand-kept table.

``ISO_COUNTRIES`` is every ISO 3166-1 alpha-2 code that is *officially assigned*: CLDR's territories
minus what ISO 3166-1 itself sets apart, by its own rules:
- the user-assigned ranges (AA, QM-QZ, XA-XZ, ZZ: ISO 3166-1 section 8.1.3), which CLDR uses for
  "Outlying Oceania" (QO), pseudo-locales (XA, XB), Kosovo (XK) and "Unknown Region" (ZZ);
- the *exceptionally reserved* codes (ISO 3166 Maintenance Agency: AC, CP, CQ, DG, EA, EU, EZ, FX,
  IC, SU, TA, UK, UN), which CLDR lists as territories (Ascension, the EU, the UN...).
A new country assigned by ISO reaches erpsync with the next babel release.
"""

from __future__ import annotations

from functools import cache

#: ISO 3166 exceptionally reserved alpha-2 codes (not countries; ISO 3166/MA)
EXCEPTIONALLY_RESERVED = frozenset({"AC", "CP", "CQ", "DG", "EA", "EU", "EZ", "FX", "IC", "SU", "TA", "UK", "UN"})


def is_user_assigned(code: str) -> bool:
    """AA, QM-QZ, XA-XZ and ZZ: free for private use, never a country (ISO 3166-1, 8.1.3)."""
    return code in ("AA", "ZZ") or code[0] == "X" or (code[0] == "Q" and code[1] >= "M")


@cache
def iso_countries() -> tuple[str, ...]:
    from babel import Locale

    codes = (code for code in Locale("en").territories
             if isinstance(code, str) and len(code) == 2 and code.isalpha())
    return tuple(sorted(c for c in codes if c not in EXCEPTIONALLY_RESERVED and not is_user_assigned(c)))
