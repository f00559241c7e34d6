"""The privacy check's chance baseline for pattern-made values (postcodes, phone numbers)."""

from __future__ import annotations

import pandas as pd

from hma_db.report.privacy import _faker_draws, _matches, _pattern_chance


def test_a_postcode_met_by_coincidence_is_not_a_leak_but_an_email_is():
    real = pd.DataFrame({"code": ["10012", "94043", "T6G 2C7", "2010", "60611"]})
    draws = _faker_draws("postcode", 10, ("en_US",)).to_frame("code")
    # Faker's postcodes are five digits: three real codes share that shape, 1 in 100,000 each.
    assert abs(_pattern_chance(real["code"], draws["code"]) - 3e-5 * (draws["code"].str.len()
                                                                     == 5).mean()) < 1e-9
    synthetic = pd.DataFrame({"code": [f"{n:05d}" for n in range(20_000, 20_080)] + ["94043"]})
    found = _matches(real, synthetic, draws)
    assert found["matches"] == 1 and not found["flagged"]
    # Many more matches than the pattern explains are still a leak.
    leaked = pd.DataFrame({"code": ["10012", "94043", "60611"] * 3 + ["12345"]})
    assert _matches(real, leaked, draws)["flagged"]
    emails = pd.DataFrame({"mail": ["luisg@embraer.com.br", "ftremblay@gmail.com"]})
    faker_mails = _faker_draws("email", 60, ("en_US",)).to_frame("mail")
    one = pd.DataFrame({"mail": ["someone@example.org"] * 80 + ["ftremblay@gmail.com"]})
    assert _matches(emails, one, faker_mails)["flagged"]
