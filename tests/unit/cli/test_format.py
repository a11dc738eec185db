"""Terminal tables: undefined numbers print as '-' with one footnote, never 'nan'."""

from __future__ import annotations

import math

from tradeforge.cli._format import footnote, num


def test_undefined_values_print_as_a_dash():
    assert num(math.nan, ".2f") == "-"
    assert num(None, "+.1%") == "-"
    assert num(math.inf, ".2f") == "-"
    assert num(0.1234, "+.1%") == "+12.3%"


def test_the_footnote_appears_only_when_a_cell_was_undefined():
    assert footnote(["1.00", "+2.0%"]) is None
    note = footnote(["1.00", num(math.nan, ".2f")])
    assert note is not None
    assert note.startswith("- : undefined")
    assert "nan" not in note
