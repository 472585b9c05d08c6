"""Checks a training config before anything is built or written.

The trainer's own keys are in SCHEMA; `config.model` is checked against the chosen model
family's schema and `config.data` against the chosen data source's (each component owns its
keys). An unknown key, a wrong type or an impossible value raises ConfigError naming the key.
"""

from typing import Any

from jaxgan import augment, checks, data, models, objectives
from jaxgan import gan as gan_lib
from jaxgan.errors import ConfigError
from jaxgan.evaluation import features as features_lib

SCHEMA: dict[str, checks.Check] = {
  'seed': checks.integer(),
  'batch_size': checks.integer(1),
  'num_steps': checks.integer(0),
  'log_every': checks.integer(1),
  'sample_every': checks.integer(0),
  'checkpoint_every': checks.integer(1),
  'keep_checkpoints': checks.integer(1),
  'num_grid_samples': checks.integer(1),
  'eval_every': checks.integer(0),
  'eval_num_samples': checks.integer(1),
  'eval_features': lambda v: _feature_network(v),
  'eval_inception_weights': checks.string,
  'optim.name': checks.one_of(*gan_lib.OPTIMIZERS),
  'optim.g_lr': checks.positive_float,
  'optim.schedule': checks.one_of(*gan_lib.SCHEDULES),
  'optim.d_lr': checks.positive_float,
  'optim.b1': checks.beta,
  'optim.b2': checks.beta,
  'optim.eps': checks.positive_float,
  'optim.decay': checks.open_unit,
  'optim.momentum': checks.beta,
  'optim.weight_decay': checks.nonneg_float,
  # The GAN's hyperparameters (jaxgan.gan.GAN, set by name from this section) ...
  'train.loss': lambda v: checks.one_of(*objectives.names())(v),
  'train.d_steps': checks.integer(1),
  'train.g_steps': checks.integer(1),
  'train.balance': checks.one_of('none', 'loss_ratio'),
  'train.balance_a': checks.positive_float,
  'train.balance_b': checks.positive_float,
  'train.gp_weight': checks.nonneg_float,
  'train.r1_weight': checks.nonneg_float,
  'train.r1_every': checks.integer(1),
  'train.label_smoothing': checks.beta,
  'train.info_weight': checks.nonneg_float,
  'train.mode_seeking': checks.nonneg_float,
  'train.ema_decay': checks.beta,
  'train.ema_start': checks.integer(0),
  'train.standing_stats': checks.integer(0),
  'train.augment': augment.check_spec,
  'train.augment_p': augment.check_p,
  'train.ada_target': checks.beta,
  'train.ada_interval': checks.integer(1),
  'train.ada_kimg': checks.positive_float,
  # ... and the trainer's.
  'train.steps_per_call': checks.integer(1),
  'train.on_nan': checks.one_of('stop', 'rollback'),
  'train.rollback_lr_factor': checks.open_unit,
  'train.max_rollbacks': checks.integer(1),
}


def _feature_network(v) -> str | None:
  """'' (the data source's own) or a feature network's name, known when the config is checked
  (networks registered by the user's code included)."""
  if v == '' or v in features_lib.names():
    return None
  return f"must be '' (the dataset's own) or one of {', '.join(features_lib.names())}; got {v!r}"


def flatten(config, prefix: str = '') -> dict[str, Any]:
  """{'model.latent_dim': 100, ...} from a nested ConfigDict or dict."""
  out = {}
  for key, value in config.items():
    if hasattr(value, 'items'):
      out.update(flatten(value, f'{prefix}{key}.'))
    else:
      out[f'{prefix}{key}'] = value
  return out


def schema(config) -> dict[str, checks.Check]:
  """Every key `config` must have: the trainer's, its model family's and its data source's."""
  family = models.get(config.model.name)
  source = data.get(config.data.name)
  sections = {
    'model': {**models.COMMON_SCHEMA, **family.SCHEMA},
    'data': {**data.COMMON_SCHEMA, **source.SCHEMA},
  }
  out = dict(SCHEMA)
  for section, keys in sections.items():
    out.update({f'{section}.{k}': check for k, check in keys.items()})
  return out


def validate(config, num_devices: int = 1) -> None:
  """Raises ConfigError for the first problem found in `config`."""
  flat = flatten(config)
  keys = schema(config)
  for key in flat:
    if key not in keys:
      where = {
        'model': f' of model {config.model.name!r}',
        'data': f' of data {config.data.name!r}',
      }
      raise ConfigError(f'unknown config key {key!r}{where.get(key.split(".")[0], "")}')
  for key, check in keys.items():
    if key not in flat:
      raise ConfigError(f'config key {key!r} is missing (start from configs/mnist.py)')
    problem = check(flat[key])
    if problem:
      raise ConfigError(f'config.{key} {problem}')
  _check_combinations(config)
  if config.batch_size % num_devices:
    raise ConfigError(
      f'config.batch_size={config.batch_size} must be divisible by the {num_devices} devices'
    )


def _check_combinations(config) -> None:
  """Combinations of keys that cannot work together, found before any data is read."""
  source = data.get(config.data.name)
  if config.eval_every and not (config.eval_features or getattr(source, 'FEATURES', None)):
    raise ConfigError(
      f'data.name={config.data.name} has no evaluation feature network yet; set eval_every=0 '
      'or eval_features=inception'
    )
  family = models.get(config.model.name)
  shape = data.image_shape(config.data)
  if shape and hasattr(family, 'check_image_shape'):
    family.check_image_shape(config.model, shape)
  if config.train.label_smoothing and not objectives.get(config.train.loss).label_smoothing:
    raise ConfigError(
      f'config.train.label_smoothing needs a BCE loss (non_saturating, minimax), '
      f'not train.loss={config.train.loss!r}'
    )
  if config.model.latent_classes and config.model.conditional:
    raise ConfigError(
      'config.model.latent_classes (InfoGAN) and model.conditional exclude each other: G has '
      'one class input, the data labels or the code'
    )
  if config.data.clusters and not config.model.conditional:
    raise ConfigError(
      f'config.data.clusters={config.data.clusters} makes labels for a conditional GAN: set '
      'model.conditional=True too'
    )
  if config.model.latent_continuous > config.model.latent_dim:
    raise ConfigError(
      f'config.model.latent_continuous={config.model.latent_continuous} is more than '
      f'model.latent_dim={config.model.latent_dim}: the continuous codes are dims of z'
    )
  if config.train.get('mode_seeking', 0.0) and config.batch_size < 2:
    raise ConfigError(
      f'config.train.mode_seeking pairs the two halves of the fake batch: batch_size must be '
      f'at least 2, got {config.batch_size}'
    )
  if config.train.augment_p == 'adaptive' and not augment.parse(config.train.augment):
    raise ConfigError(
      "config.train.augment_p='adaptive' needs ops in train.augment, e.g. 'translation,cutout'"
    )
