"""Country codes come from CLDR (babel), filtered by ISO 3166-1's own rules (issue 19 item 6)."""

from __future__ import annotations

from erpsync.quality.settings import allowed_countries
from erpsync.rules.countries import is_user_assigned, iso_countries

# the hand-kept table this replaced (ISO 3166-1 officially assigned codes, 249 of them): babel must
# give exactly these, so swapping the source changed nothing for users
_HAND_KEPT = """AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS
    BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG
    EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR
    HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR
    LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG
    NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE
    SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA
    UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW""".split()


def test_babel_gives_the_officially_assigned_codes() -> None:
    assert len(_HAND_KEPT) == 249
    assert iso_countries() == tuple(sorted(_HAND_KEPT))


def test_reserved_and_private_codes_are_not_countries() -> None:
    codes = set(iso_countries())
    for not_a_country in ("EU", "UN", "XK", "ZZ", "QO", "XA", "AC", "IC", "UK", "AA"):
        assert not_a_country not in codes, not_a_country
    assert all(is_user_assigned(c) for c in ("AA", "QM", "QZ", "XA", "XZ", "ZZ"))
    assert not any(is_user_assigned(c) for c in ("QA", "GB", "ZA", "MQ"))


def test_the_gate_allows_them_unless_narrowed(monkeypatch) -> None:
    monkeypatch.delenv("ERPSYNC_ALLOWED_COUNTRIES", raising=False)
    assert set(allowed_countries()) == set(_HAND_KEPT)
    monkeypatch.setenv("ERPSYNC_ALLOWED_COUNTRIES", "US,GB")
    assert set(allowed_countries()) == {"US", "GB"}
