"""Which ticker an artifact was built for, and the check the steps make.

One state folder keeps the newest feature artifacts of whichever ticker ran
the feature pipeline last. A training or inference run for another ticker
would otherwise read them and register, or issue, its results under the wrong
name: the feature pipeline records its ticker on its run, and the consuming
steps refuse artifacts of another ticker.
"""

from __future__ import annotations

import logging

from goldsignals.errors import TickerMismatchError

logger = logging.getLogger(__name__)

TICKER_KEY = "ticker"
"""Run metadata key holding the ticker a feature pipeline run was built for."""


def require_ticker(expected: str, built_for: str | None, *, artifact: str) -> None:
    """Fail unless ``artifact`` was built for ``expected``.

    Args:
        expected: The configured ticker (``GOLDSIGNALS_TICKER``).
        built_for: The ticker the artifact's run recorded, or None when the
            run recorded none (runs of versions before this check).
        artifact: The artifact's name, for the message.

    Raises:
        TickerMismatchError: The artifact belongs to another ticker.
    """
    if built_for is None:
        logger.warning(
            "Artifact %s records no ticker (built before tickers were "
            "recorded); assuming %s",
            artifact,
            expected,
        )
        return
    if built_for != expected:
        raise TickerMismatchError(
            f"the newest {artifact} was built for ticker {built_for}, not "
            f"{expected} (GOLDSIGNALS_TICKER): run the feature engineering "
            f"pipeline for {expected} first (`goldsignals run all`, or "
            "feature-engineering then this pipeline), or keep each ticker in "
            "its own state folder (GOLDSIGNALS_HOME)"
        )
