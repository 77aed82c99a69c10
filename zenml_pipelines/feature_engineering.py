"""Feature engineering pipeline: prices to versioned feature artifacts."""

from zenml import pipeline

from steps.data_loader import data_loader
from steps.data_preprocessor import data_preprocessor
from steps.data_scaler import data_scaler
from steps.data_splitter import data_splitter
from steps.feature_generation import feature_generation


@pipeline(name="gold_feature_engineering", enable_cache=False)
def feature_engineering(horizon: int = 1, test_fraction: float = 0.2) -> None:
    """Load, clean, featurise, split and scale; artifacts feed the next pipelines.

    Args:
        horizon: Label horizon in trading days (also the train/test gap).
        test_fraction: Share of labelled rows in the test window.
    """
    prices = data_loader()
    clean = data_preprocessor(prices)
    features = feature_generation(clean, horizon=horizon)
    train, test = data_splitter(features, test_fraction=test_fraction, gap=horizon)
    data_scaler(train, test)
