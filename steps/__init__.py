"""The ZenML steps of the three pipelines, one per module."""
