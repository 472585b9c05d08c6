"""A training config: its keys, their one definition each, and the checks run before anything
is built or written.

Every key is defined once, with its default and its check (`checks.Key`): the loop's in `LOOP`
below, the optimizers' in `jaxgan.gan.OPTIM_SCHEMA`, the GAN's hyperparameters on the fields of
`jaxgan.gan.GAN` (`train.*`, and `model.latent_*`), a model family's and a data source's in
their `SCHEMA`s (and `COMMON_SCHEMA`s). `defaults(model, data)` is a config with every key at
its default, which recipes start from; `complete` adds the keys a config lacks (an older run's
config.json, after `migrate`); `validate` raises ConfigError naming the key for an unknown
key, a wrong type or an impossible value.
"""

from typing import Any

import ml_collections

from jaxgan import augment, checks, data, models, objectives, schedules
from jaxgan import gan as gan_lib
from jaxgan.errors import ConfigError
from jaxgan.evaluation import features as features_lib

K = checks.Key
# The training loop's keys (the top level of a config).
LOOP: dict[str, checks.Check | checks.Key] = {
  'seed': K(0, checks.integer()),
  'batch_size': K(64, checks.integer(1)),  # global batch, split over all devices
  'num_steps': checks.integer(0),  # no default: every recipe says how long it trains
  'log_every': K(100, checks.integer(1)),
  'sample_every': K(500, checks.integer(0)),  # 0 disables sample grids
  'checkpoint_every': K(1000, checks.integer(1)),
  'keep_checkpoints': K(3, checks.integer(1)),
  'num_grid_samples': K(64, checks.integer(1)),  # images in each sample grid
  'eval_every': K(0, checks.integer(0)),  # FID etc. against the test split; 0: off
  'eval_num_samples': K(10_000, checks.integer(1)),
  # The evaluation's feature network: '' is the dataset's own; 'inception' reads its weights
  # from eval_inception_weights ('': found as docs/evaluation.md says).
  'eval_features': K('', lambda v: _feature_network(v)),
  'eval_inception_weights': K('', checks.string),
  # Iterations fused into one jitted call (lax.scan): the same result bit for bit, fewer
  # dispatches and host round trips.
  'steps_per_call': K(10, checks.integer(1)),
  # A NaN/Inf in the losses, D outputs or grad norms: 'stop' the run, or 'rollback' to the last
  # checkpoint with both learning rates x rollback_lr_factor, at most max_rollbacks times.
  'on_nan': K('stop', checks.one_of('stop', 'rollback')),
  'rollback_lr_factor': K(0.5, checks.open_unit),
  'max_rollbacks': K(3, checks.integer(1)),
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


def _schema(model_name: str, data_name: str) -> dict[str, Any]:
  family, source = models.get(model_name), data.get(data_name)
  out = dict(LOOP)
  out.update({f'optim.{k}': v for k, v in gan_lib.OPTIM_SCHEMA.items()})
  out.update({k: v[1] for k, v in gan_lib.hyperparameters().items()})
  for section, keys in (
    ('model', {**models.COMMON_SCHEMA, **family.SCHEMA}),
    ('data', {**data.COMMON_SCHEMA, **source.SCHEMA}),
  ):
    out.update({f'{section}.{k}': entry for k, entry in keys.items()})
  return out


def schema(config) -> dict[str, Any]:
  """Every key `config` may have, {dotted key: checks.Key, or a bare check for a key without a
  default}: the loop's, the optimizers', the GAN's, its model family's and its data source's."""
  return _schema(config.model.name, config.data.name)


def _put(config: ml_collections.ConfigDict, key: str, entry: checks.Key) -> None:
  *sections, leaf = key.split('.')
  node = config
  for section in sections:
    if section not in node:
      node[section] = ml_collections.ConfigDict()
    node = node[section]
  default = entry.default
  node[leaf] = (
    ml_collections.FieldReference(default, field_type=object) if entry.any_type else default
  )


def defaults(model: str, data_name: str) -> ml_collections.ConfigDict:
  """A config of model family `model` on data source `data_name` with every key that has a
  default at it; recipes set the rest (e.g. num_steps) and what they change."""
  config = ml_collections.ConfigDict()
  config.model = ml_collections.ConfigDict({'name': model})
  config.data = ml_collections.ConfigDict({'name': data_name})
  for key, entry in _schema(model, data_name).items():
    if checks.key_of(entry):
      _put(config, key, entry)
  return config


# Keys renamed since jaxgan wrote the config.json of older runs: {old: new}. The loop's keys
# left `train`, which now holds the GAN's hyperparameters only.
RENAMED: dict[str, str] = {
  f'train.{k}': k for k in ('steps_per_call', 'on_nan', 'rollback_lr_factor', 'max_rollbacks')
}


def migrate(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """An older run's config in today's keys: renamed keys moved, then `complete`d."""
  flat = flatten(config)
  for old, new in RENAMED.items():
    if old in flat and new not in flat:
      *sections, leaf = old.split('.')
      node = config
      for section in sections:
        node = node[section]
      with config.unlocked():
        value = node[leaf]
        del node[leaf]
        _put(config, new, checks.Key(value, None))
  return complete(config)


def complete(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """`config` with every key it lacks added at its default (in place, locked or not;
  returned)."""
  flat = flatten(config)
  missing = {k: e for k, e in schema(config).items() if k not in flat and checks.key_of(e)}
  if missing:
    with config.unlocked():
      for key, entry in missing.items():
        _put(config, key, entry)
  return config


def validate(config, num_devices: int = 1) -> None:
  """Raises ConfigError for the first problem found in `config`, after adding the keys it
  lacks at their defaults (`complete`)."""
  for section in ('model', 'data'):
    if 'name' not in config.get(section, {}):
      raise ConfigError(f'config key {section}.name is missing: every config names its {section}')
  complete(config)
  flat = flatten(config)
  keys = schema(config)
  for key in flat:
    if key not in keys:
      where = {
        'model': f' of model {config.model.name!r}',
        'data': f' of data {config.data.name!r}',
      }
      raise ConfigError(f'unknown config key {key!r}{where.get(key.split(".")[0], "")}')
  for key, entry in keys.items():
    if key not in flat:
      raise ConfigError(f'config key {key!r} is missing: it has no default, set it')
    problem = checks.check_of(entry)(flat[key])
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
    shape = data.image_shape(config.data)
    raise ConfigError(features_lib.none_of_its_own(config.data.name, shape))
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
  if config.train.mode_seeking and config.batch_size < 2:
    raise ConfigError(
      f'config.train.mode_seeking pairs the two halves of the fake batch: batch_size must be '
      f'at least 2, got {config.batch_size}'
    )
  if config.train.ema_kimg and config.train.ema_decay:
    raise ConfigError(
      'config.train.ema_kimg (a half-life) and train.ema_decay both set the EMA: set one'
    )
  lr_scheduled = any(
    isinstance(schedules.of(config.optim[k]), schedules.Schedule) for k in ('g_lr', 'd_lr')
  )
  if lr_scheduled and config.optim.schedule != 'constant':
    raise ConfigError(
      f'config.optim.schedule={config.optim.schedule!r} decays a number over the run: with a '
      "scheduled optim.g_lr or d_lr, leave it 'constant'"
    )
  if config.train.augment_p == 'adaptive' and not augment.parse(config.train.augment):
    raise ConfigError(
      "config.train.augment_p='adaptive' needs ops in train.augment, e.g. 'translation,cutout'"
    )
