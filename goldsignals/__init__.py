"""goldsignals: daily gold prices turned into buy/sell signals.

The package holds the domain logic as plain typed functions; the ZenML steps in
``steps/`` and the pipelines in ``zenml_pipelines/`` are thin wrappers around it.
"""

__version__ = "0.1.0"
