"""ZenML step ``data_splitter``: chronological train and test windows."""

from __future__ import annotations

from typing import Annotated

import pandas as pd
from zenml import step

from goldsignals.splitting import chronological_split


@step(enable_cache=False)
def data_splitter(
    features: pd.DataFrame,
    test_fraction: float = 0.2,
    gap: int = 1,
    min_rows: int = 60,
) -> tuple[Annotated[pd.DataFrame, "train_set"], Annotated[pd.DataFrame, "test_set"]]:
    """Split labelled rows in time order, leaving ``gap`` rows between them.

    Args:
        features: Feature frame from ``feature_generation``.
        test_fraction: Share of labelled rows in the (final) test window.
        gap: Rows dropped between train and test; the label horizon.
        min_rows: Fewest rows of each window; fewer cannot give a meaningful
            evaluation, so the run stops before a useless model is trained.

    Returns:
        Unscaled train and test frames (FEATURE_COLUMNS, forward_return,
        target), train strictly before test.
    """
    split = chronological_split(
        features, test_fraction=test_fraction, gap=gap, min_rows=min_rows
    )
    return split.train, split.test
