"""Fixtures for the data tests."""

from __future__ import annotations

import pytest
from vendor_fakes import Sleeps


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()
