"""ZenML step ``data_scaler``: a scaler fitted on the training window only."""

from __future__ import annotations

from typing import Annotated

import pandas as pd
from sklearn.preprocessing import StandardScaler
from zenml import step

from goldsignals.splitting import fit_scaler, scale_features


@step(enable_cache=False)
def data_scaler(
    train: pd.DataFrame, test: pd.DataFrame
) -> tuple[
    Annotated[pd.DataFrame, "train_set_scaled"],
    Annotated[pd.DataFrame, "test_set_scaled"],
    Annotated[StandardScaler, "feature_scaler"],
]:
    """Fit a standard scaler on ``train`` and apply it to both windows.

    Returns:
        Scaled train and test frames (same columns and index as the inputs)
        and the fitted scaler, which the training pipeline bundles with the
        classifier so that inference applies the very same scaling.
    """
    scaler = fit_scaler(train)
    return scale_features(scaler, train), scale_features(scaler, test), scaler
