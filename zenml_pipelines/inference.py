"""Inference pipeline: best registered model + newest features to signals."""

from zenml import pipeline
from zenml.client import Client

from steps.inference_predict import inference_predict
from steps.select_best_model import select_best_model
from steps.signal_writer import signal_writer


@pipeline(name="gold_inference", enable_cache=False)
def inference() -> None:
    """Predict signals for the newest dates; upsert them and the known outcomes."""
    client = Client()
    model, reference = select_best_model()
    signals = inference_predict(
        model, reference, client.get_artifact_version("feature_frame")
    )
    signal_writer(signals, prices=client.get_artifact_version("clean_prices"))
