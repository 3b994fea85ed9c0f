"""The Hotline config file: schema, loading with precise errors, and lookups."""

from ivr.config.destinations import Destination, DestinationKind
from ivr.config.loader import ConfigError, ConfigProblem, load_config
from ivr.config.schema import HotlineConfig

__all__ = [
    "ConfigError",
    "ConfigProblem",
    "Destination",
    "DestinationKind",
    "HotlineConfig",
    "load_config",
]
