"""The ZenML steps of the three pipelines, one per module."""

from __future__ import annotations

from zenml import get_step_context
from zenml.client import Client

from goldsignals.config import get_settings
from goldsignals.tickers import TICKER_KEY, require_ticker


def require_input_ticker(name: str) -> None:
    """Fail unless this step's input ``name`` was built for the set ticker.

    The ticker is the one the feature pipeline run that produced the input
    recorded (``data_loader`` writes it into the run's metadata).

    Raises:
        TickerMismatchError: The input belongs to another ticker.
    """
    artifact = get_step_context().inputs[name][0]
    run_id = artifact.producer_pipeline_run_id
    built_for = None
    if run_id is not None:
        built_for = Client().get_pipeline_run(run_id).run_metadata.get(TICKER_KEY)
    require_ticker(
        get_settings().ticker,
        None if built_for is None else str(built_for),
        artifact=artifact.name,
    )
