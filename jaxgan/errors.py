"""User-facing errors: the CLI prints these as one line and exits non-zero."""


class JaxganError(Exception):
  """A problem with the user's input (config, data, workdir), not a bug in jaxgan."""


class ConfigError(JaxganError):
  """An unknown, mistyped, out-of-range or conflicting config value."""


class DataError(JaxganError):
  """A dataset file is missing, corrupt, or cannot be fetched or prepared."""


class CheckpointError(JaxganError):
  """A checkpoint cannot be restored into the current config, or the workdir is unusable."""
