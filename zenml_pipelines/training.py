"""Training pipeline: fit, evaluate and register on the latest features."""

from zenml import pipeline
from zenml.client import Client

from steps.model_evaluator import model_evaluator
from steps.model_trainer import model_trainer


@pipeline(name="gold_training", enable_cache=False)
def training() -> None:
    """Train on the newest ``train_set_scaled`` and register the model.

    The feature artifacts are looked up by name when the step runs (late
    materialisation), so a scheduled run always uses the newest versions.
    """
    client = Client()
    classifier = model_trainer(client.get_artifact_version("train_set_scaled"))
    model_evaluator(
        classifier,
        scaler=client.get_artifact_version("feature_scaler"),
        train=client.get_artifact_version("train_set"),
        test=client.get_artifact_version("test_set"),
        prices=client.get_artifact_version("clean_prices"),
    )
