"""Exceptions of goldsignals; each message names the bad value and the fix."""


class GoldSignalsError(Exception):
    """Base class of every error goldsignals raises on purpose."""


class PriceDataError(GoldSignalsError, ValueError):
    """A price file or download cannot be read into the standard price frame."""


class PriceValidationError(GoldSignalsError, ValueError):
    """Prices break a rule of the price schema (non-positive, duplicated, ...)."""


class PriceSourceUnavailableError(GoldSignalsError, RuntimeError):
    """No prices could be had: the source is unreachable and no history exists."""


class FeatureError(GoldSignalsError, ValueError):
    """Features cannot be built from the given prices or configuration."""


class ModelConfigError(GoldSignalsError, ValueError):
    """The model configuration names an unknown estimator or bad parameters."""


class ModelNotFoundError(GoldSignalsError, LookupError):
    """No registered model version can serve predictions."""


class SignalStoreError(GoldSignalsError, RuntimeError):
    """The signals database cannot be reached or written."""


class PipelineRunError(GoldSignalsError, RuntimeError):
    """A pipeline could not start or one of its steps failed."""


class SettingsError(GoldSignalsError, ValueError):
    """A setting is missing or invalid, or the state does not allow a command."""


class TickerMismatchError(GoldSignalsError, ValueError):
    """An input artifact was built for another ticker than the configured one."""
