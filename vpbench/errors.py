"""User-facing errors: the CLI prints them as one line and exits with code 2."""


class VpbenchError(Exception):
    """A mistake in what the user asked for (config, name, file, geometry), not a bug."""


class ConfigError(VpbenchError):
    """A config file or override is missing, malformed, or names an unknown key or value."""


class RegistryError(VpbenchError):
    """An unknown or clashing model name."""


class GeometryError(VpbenchError):
    """Frame or latent sizes that a codec or model cannot take."""


class DataError(VpbenchError):
    """A data set that cannot be built or read."""
