"""User-facing errors: the CLI prints them as one line and exits with code 2."""

from __future__ import annotations


class VpbenchError(Exception):
    """A mistake in what the user asked for (config, name, file, geometry), not a bug."""


class ConfigError(VpbenchError):
    """A config file or override is missing, malformed, or names an unknown key or value.

    ``key`` is the dotted key at fault (``train.steps``) and ``source`` the file or layer that set it
    (``configs/train/default.yaml``, ``--set``); the message reads ``source: key: detail``.
    """

    def __init__(self, detail: str, key: str | None = None, source: str | None = None):
        self.detail, self.key, self.source = detail, key, source
        super().__init__(str(self))

    def __str__(self) -> str:
        return ": ".join(part for part in (self.source, self.key, self.detail) if part)


class RegistryError(VpbenchError):
    """An unknown or clashing model name."""


class GeometryError(VpbenchError):
    """Frame or latent sizes that a codec or model cannot take."""


class DataError(VpbenchError):
    """A data set that cannot be built or read."""


class StoreError(VpbenchError):
    """A results store that cannot be opened, read or written."""


class CheckpointError(VpbenchError):
    """A checkpoint that vpbench refuses to load (it asks to run code)."""


class NonFiniteError(RuntimeError):
    """A run that diverged: its loss, gradients or predictions are inf or NaN. The run fails; not a user mistake."""
