"""The check that an artifact was built for the configured ticker."""

from __future__ import annotations

import logging

import pytest

from goldsignals.errors import TickerMismatchError
from goldsignals.tickers import require_ticker


def test_require_ticker_same_ticker_passes() -> None:
    require_ticker("GC=F", "GC=F", artifact="feature_frame")


def test_require_ticker_other_ticker_names_both_and_the_fix() -> None:
    with pytest.raises(
        TickerMismatchError,
        match=r"feature_frame was built for ticker SI=F, not GC=F .*feature "
        r"engineering pipeline for GC=F",
    ):
        require_ticker("GC=F", "SI=F", artifact="feature_frame")


def test_require_ticker_unrecorded_ticker_warns_and_passes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="goldsignals.tickers"):
        require_ticker("GC=F", None, artifact="train_set")

    assert "train_set records no ticker" in caplog.text
