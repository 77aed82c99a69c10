"""Start-up costs that a long-lived ZenML process pays once instead of per use."""

from __future__ import annotations

import importlib.metadata
import logging
from collections.abc import Mapping

logger = logging.getLogger(__name__)


def remember_package_index() -> None:
    """Compute the module -> distribution index once for this process.

    ZenML records the package of each third-party artifact type (a pandas
    DataFrame, a fitted scaler) through ``importlib.metadata``'s
    ``packages_distributions()``, which reads the metadata of every installed
    distribution on each call: 0.5 to 1 s per artifact on this host. The
    index changes only when packages are installed or removed, which a
    pipeline run or a step does not do, so the first answer is kept for the
    rest of the process.
    """
    current = importlib.metadata.packages_distributions
    if getattr(current, "remembered", False):
        return
    index = current()

    def remembered() -> Mapping[str, list[str]]:
        return index

    remembered.remembered = True  # type: ignore[attr-defined]
    importlib.metadata.packages_distributions = remembered
    logger.debug("Remembered the package index (%d top-level modules)", len(index))
