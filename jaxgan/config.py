"""Checks a training config before anything is built or written.

Every key a config may have is listed in SCHEMA with a check; an unknown key, a wrong type or
an impossible value raises ConfigError naming the key. Research code adding its own keys can
extend SCHEMA.
"""

from collections.abc import Callable
from typing import Any

from jaxgan import losses
from jaxgan.errors import ConfigError

Check = Callable[[Any], str | None]  # returns a problem description, or None if fine


def _int(lo: int | None = None) -> Check:
  def check(v):
    if not isinstance(v, int) or isinstance(v, bool):
      return f'must be an integer, got {v!r}'
    if lo is not None and v < lo:
      return f'must be >= {lo}, got {v}'
    return None

  return check


def _positive_float(v) -> str | None:
  if not isinstance(v, int | float) or isinstance(v, bool):
    return f'must be a number, got {v!r}'
  return None if v > 0 else f'must be > 0, got {v}'


def _nonneg_float(v) -> str | None:
  if not isinstance(v, int | float) or isinstance(v, bool):
    return f'must be a number, got {v!r}'
  return None if v >= 0 else f'must be >= 0, got {v}'


def _beta(v) -> str | None:
  if not isinstance(v, int | float) or isinstance(v, bool) or not 0 <= v < 1:
    return f'must be a number in [0, 1), got {v!r}'
  return None


def _open_unit(v) -> str | None:
  if not isinstance(v, int | float) or isinstance(v, bool) or not 0 < v < 1:
    return f'must be a number in (0, 1), got {v!r}'
  return None


def _bool(v) -> str | None:
  return None if isinstance(v, bool) else f'must be True or False, got {v!r}'


def _str(v) -> str | None:
  return None if isinstance(v, str) else f'must be a string, got {v!r}'


def _one_of(*choices: str) -> Check:
  def check(v):
    return None if v in choices else f'must be one of {", ".join(choices)}; got {v!r}'

  return check


def _int_tuple(v) -> str | None:
  ok = isinstance(v, tuple | list) and v and all(isinstance(f, int) and f > 0 for f in v)
  return None if ok else f'must be a non-empty tuple of positive integers, got {v!r}'


SCHEMA: dict[str, Check] = {
  'seed': _int(),
  'batch_size': _int(1),
  'num_steps': _int(0),
  'log_every': _int(1),
  'sample_every': _int(0),
  'checkpoint_every': _int(1),
  'keep_checkpoints': _int(1),
  'num_grid_samples': _int(1),
  'eval_every': _int(0),
  'eval_num_samples': _int(1),
  'data.name': _str,
  'data.split': _str,
  'data.dir': _str,
  'data.cache_dir': _str,
  'data.url': _str,
  'data.stacked_size': _int(1),
  'model.name': _one_of('dcgan'),
  'model.latent_dim': _int(1),
  'model.latent_dist': _one_of('gaussian', 'uniform'),
  'model.g_features': _int_tuple,
  'model.d_features': _int_tuple,
  'model.upsample': _one_of('conv_transpose', 'pixel_shuffle'),
  'model.downsample': _one_of('strided_conv', 'avg_pool'),
  'model.norm': _one_of('batch', 'layer', 'group', 'none'),
  'model.dtype': _one_of('float32', 'bfloat16'),
  'optim.g_lr': _positive_float,
  'optim.d_lr': _positive_float,
  'optim.b1': _beta,
  'optim.b2': _beta,
  'train.loss': _one_of(*losses.LOSSES),
  'train.d_steps': _int(1),
  'train.g_steps': _int(1),
  'train.balance': _one_of('none', 'loss_ratio'),
  'train.balance_a': _positive_float,
  'train.balance_b': _positive_float,
  'train.steps_per_call': _int(1),
  'train.on_nan': _one_of('stop', 'rollback'),
  'train.rollback_lr_factor': _open_unit,
  'train.max_rollbacks': _int(1),
  # --- The GAN family: regularisers, EMA, spectral norm, conditioning ----------------------
  'optim.weight_decay': _nonneg_float,
  'train.gp_weight': _nonneg_float,
  'train.r1_weight': _nonneg_float,
  'train.r1_every': _int(1),
  'train.label_smoothing': _beta,
  'train.ema_decay': _beta,
  'train.ema_start': _int(0),
  'model.d_norm': _one_of('', 'batch', 'layer', 'group', 'none'),
  'model.spectral_norm': _bool,
  'model.conditional': _bool,
  'data.num_classes': _int(1),
}


def flatten(config, prefix: str = '') -> dict[str, Any]:
  """{'model.latent_dim': 100, ...} from a nested ConfigDict or dict."""
  out = {}
  for key, value in config.items():
    if hasattr(value, 'items'):
      out.update(flatten(value, f'{prefix}{key}.'))
    else:
      out[f'{prefix}{key}'] = value
  return out


def validate(config, num_devices: int = 1) -> None:
  """Raises ConfigError for the first problem found in `config`."""
  flat = flatten(config)
  for key in flat:
    if key not in SCHEMA:
      raise ConfigError(f'unknown config key {key!r}')
  for key, check in SCHEMA.items():
    if key not in flat:
      raise ConfigError(f'config key {key!r} is missing (start from configs/mnist.py)')
    problem = check(flat[key])
    if problem:
      raise ConfigError(f'config.{key} {problem}')
  _check_family(config)
  if config.batch_size % num_devices:
    raise ConfigError(
      f'config.batch_size={config.batch_size} must be divisible by the {num_devices} devices'
    )


def _check_family(config) -> None:
  """Combinations of the GAN-family keys that cannot work together."""
  if config.train.label_smoothing and config.train.loss not in ('non_saturating', 'minimax'):
    raise ConfigError(
      f'config.train.label_smoothing needs a BCE loss (non_saturating, minimax), '
      f'not train.loss={config.train.loss!r}'
    )
