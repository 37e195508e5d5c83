"""SAML's times are xs:dateTime (SAML Core 1.3.3; XML Schema 1.0 Part 2, 3.2.7.1):
the reader takes that form and only that form, whatever else ISO 8601 or Python's
``datetime.fromisoformat`` would read."""

from __future__ import annotations

import calendar
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stepup.adapters.idp.saml._read import Refusal, _time

NEW_YEAR_2024 = calendar.timegm((2024, 1, 1, 0, 0, 0))


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("2024-01-01T00:00:00Z", NEW_YEAR_2024),
        ("2024-01-01T00:00:00.250Z", NEW_YEAR_2024 + 0.25),
        ("2024-01-01T01:00:00+01:00", NEW_YEAR_2024),
        ("2024-01-01T14:00:00+14:00", NEW_YEAR_2024),
        ("2023-12-31T10:00:00-14:00", NEW_YEAR_2024),
        ("2024-01-01T00:00:00", NEW_YEAR_2024),  # no zone: SAML's times are UTC
        ("2023-12-31T24:00:00Z", NEW_YEAR_2024),  # the end of a day is the next's start
        ("2023-12-31T24:00:00.000Z", NEW_YEAR_2024),
        (" 2024-01-01T00:00:00Z\n", NEW_YEAR_2024),
    ],
)
def test_xs_datetime_forms_are_read(text: str, seconds: float) -> None:
    assert _time(text) == seconds


@pytest.mark.parametrize(
    "text",
    [
        "20240101T000000Z",  # ISO 8601's basic form
        "2024-01-01 00:00:00Z",  # a space for the T
        "2024-W01-1T00:00:00Z",  # a week date
        "2024-001T00:00:00Z",  # an ordinal date
        "2024-01-01T00:00Z",  # no seconds
        "2024-01-01",
        "2024-01-01T00:00:00z",
        "2024-01-01T24:00:01Z",
        "2024-01-01T24:00:00.5Z",
        "2024-02-30T00:00:00Z",
        "2024-01-01T00:00:00+0100",
        "\uff12\uff10\uff12\uff14-01-01T00:00:00Z",  # full-width digits
        "+2024-01-01T00:00:00Z",
        "2024-01-01T00:00:00+14:01",  # a zone is at most 14:00 away (3.2.7.3)
        "2024-01-01T00:00:00-23:59",
        "2024-01-01T00:00:00+01:60",
    ],
)
def test_other_forms_are_malformed(text: str) -> None:
    with pytest.raises(Refusal):
        _time(text)


@given(st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(9998, 12, 31)))
def test_every_instant_written_as_idps_write_it_reads_back(moment: datetime) -> None:
    written = moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    expected = (moment.replace(tzinfo=UTC) - datetime(1970, 1, 1, tzinfo=UTC)) / timedelta(
        seconds=1
    )
    assert _time(written) == pytest.approx(expected, abs=1e-6)
