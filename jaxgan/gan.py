"""The GAN spec: what stays fixed during training (networks, optimizers, hyperparameters)."""

import dataclasses
import functools
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from jaxgan import augment as augment_lib
from jaxgan import checks, models, objectives, schedules
from jaxgan.batch import FakeInputs
from jaxgan.errors import ConfigError
from jaxgan.objectives import penalties
from jaxgan.schedules import Schedule

PyTree = Any


def _hp(default, check: checks.Check, section: str = 'train', schedulable: bool = False):
  """A GAN field that a config sets as `section.<name>`: its default and check, defined here
  once (jaxgan.config derives the schema and the default config from them); `schedulable`:
  it also takes a schedule over images seen (`jaxgan.schedules`)."""
  key = schedules.key(default, check) if schedulable else checks.Key(default, check)
  return dataclasses.field(default=default, metadata={'key': key, 'section': section})


def _check_penalties(v) -> str | None:
  if not isinstance(v, str):
    return f'must be a string of comma-separated penalty names, got {v!r}'
  unknown = [n for n in penalties.parse(v) if n not in penalties.names()]
  if unknown:
    return (
      f'names unknown penalties {unknown}; registered: {", ".join(penalties.names()) or "none"}'
    )
  return None


@dataclasses.dataclass(frozen=True)
class GAN:
  """Two networks, their optimizers and the training schedule; hashable, so jit can close on it.

  `generator(z, train)` maps latents to images and `discriminator(x, train)` images to logits
  (N,) (and code outputs with InfoGAN's codes, below); both are flax modules whose
  non-parameter collections (e.g. batch_stats) are mutable in training. In training steps they
  get fresh RNG streams named in `rng_streams` (for dropout, noise inputs), folded from the
  step; in sampling and evaluation none.

  `loss` names an objective (`jaxgan.objectives`). `balance='loss_ratio'` skips G's update
  while g_loss * balance_a < d_loss and D's update while d_loss * balance_b < g_loss.
  Numbers marked `| Schedule` may follow a schedule over real images seen instead
  (`jaxgan.schedules`; `from_config` gives schedules without kimg the run's length).
  Regularisers (0 = off): `gp_weight` (WGAN-GP), `r1_weight` (gamma of R1; with `r1_every`
  = k > 1, lazy: a D update of its own on every k-th D update, scaled by k), `r2_weight` (gamma
  of R2, R1 on the fakes, on every D update: R3GAN sets both weights to one gamma),
  `label_smoothing` (real target 1 - s, BCE only); `penalties` turns on registered ones by
  name, comma-separated (`jaxgan.objectives.penalties`).
  `ema_decay` > 0 keeps an exponential moving average of G's params from step `ema_start` on;
  `ema_kimg` > 0 sets its decay by a half-life instead, in thousands of real images (StyleGAN2's
  EMA; a ramp-up is a schedule, e.g. ramp(10, 200)).
  `num_classes` > 0 makes the GAN conditional: both networks take `labels=` (N,) int32. Fake
  batches get labels drawn from `label_probs` (one per class; the data's frequencies when the
  labels are clusters, `data.clusters`), or uniformly when it is empty.
  InfoGAN's codes (Chen et al. 2016), learned without labels: `latent_classes` > 0 is a
  categorical code, drawn uniformly in [0, latent_classes) and given to G as `labels=`;
  `latent_continuous` > 0 makes the first that many dims of z continuous codes. D then returns
  (logits, code outputs), and both steps add `info_weight` times the negative log-likelihood of
  the codes under D's code head on the fake batch (the cross-entropy of the categorical one,
  a unit-variance Gaussian's for the continuous ones): a lower bound of the mutual information
  between codes and image, less constants.
  `mode_seeking` > 0 adds that times MSGAN's mode-seeking term (Mao et al. 2019) to G's loss:
  mean|z1 - z2| / mean|G(z1) - G(z2)| between the two halves of the fake batch, which share
  their labels, so that G cannot map different latents of one class to one image.
  `standing_stats` > 0: before sampling, G's batch-norm statistics are recomputed from that
  many batches of latents (BigGAN's "standing statistics"), instead of the running averages of
  training, which lag behind G's params and do not belong to the EMA params at all.
  `augment` names DiffAugment ops ('color,translation,cutout'; '' = off, `jaxgan.augment`)
  applied to every image D sees, each with probability `augment_p`: a number, or 'adaptive'
  (ADA): p starts at 0 and, every `ada_interval` steps, moves towards keeping the mean sign of
  D's logits on real images at `ada_target`, fast enough to go from 0 to 1 in `ada_kimg`
  thousand real images.
  """

  generator: nn.Module
  discriminator: nn.Module
  g_optimizer: optax.GradientTransformation
  d_optimizer: optax.GradientTransformation
  latent_dim: int = _hp(100, checks.integer(1), 'model')
  latent_dist: str = _hp('gaussian', checks.one_of('gaussian', 'uniform'), 'model')
  loss: str = _hp('non_saturating', lambda v: checks.one_of(*objectives.names())(v))
  d_steps: int = _hp(1, checks.integer(1))
  g_steps: int = _hp(1, checks.integer(1))
  balance: str = _hp('none', checks.one_of('none', 'loss_ratio'))
  balance_a: float = _hp(1.5, checks.positive_float)
  balance_b: float = _hp(2.0, checks.positive_float)
  gp_weight: float | Schedule = _hp(0.0, checks.nonneg_float, schedulable=True)
  r1_weight: float | Schedule = _hp(0.0, checks.nonneg_float, schedulable=True)
  r1_every: int = _hp(1, checks.integer(1))
  r2_weight: float | Schedule = _hp(0.0, checks.nonneg_float, schedulable=True)
  penalties: str = _hp('', lambda v: _check_penalties(v))
  label_smoothing: float = _hp(0.0, checks.beta)
  ema_decay: float | Schedule = _hp(0.0, checks.beta, schedulable=True)
  ema_kimg: float | Schedule = _hp(0.0, checks.nonneg_float, schedulable=True)
  ema_start: int = _hp(0, checks.integer(0))
  num_classes: int = 0  # from the data (data.num_classes or data.clusters) and model.conditional
  label_probs: tuple[float, ...] = ()  # how fake labels are drawn; (): uniformly
  latent_classes: int = _hp(0, checks.integer(0), 'model')
  latent_continuous: int = _hp(0, checks.integer(0), 'model')
  info_weight: float = _hp(1.0, checks.nonneg_float)
  mode_seeking: float = _hp(0.0, checks.nonneg_float)
  # Batches of STANDING_BATCH latents (jaxgan.sampling); 0: the running averages.
  standing_stats: int = _hp(0, checks.integer(0))
  augment: str = _hp('', augment_lib.check_spec)
  augment_p: float | str | Schedule = _hp(1.0, augment_lib.check_p, schedulable=True)
  ada_target: float = _hp(0.6, checks.beta)
  ada_interval: int = _hp(4, checks.integer(1))
  ada_kimg: float = _hp(100.0, checks.positive_float)
  rng_streams: tuple[str, ...] = ('dropout', 'noise')

  @property
  def objective(self) -> objectives.Objective:
    return objectives.get(self.loss)

  @property
  def augment_ops(self) -> tuple[str, ...]:
    return augment_lib.parse(self.augment)

  @property
  def adaptive(self) -> bool:
    """Whether p adapts (ADA): then it lives in the state, not here."""
    return bool(self.augment_ops) and self.augment_p == 'adaptive'

  @property
  def g_classes(self) -> int:
    """The range of G's `labels=`: the data's classes, or InfoGAN's codes; 0: none."""
    return self.num_classes or self.latent_classes

  @property
  def info(self) -> bool:
    """Whether D has InfoGAN's code head."""
    return bool(self.latent_classes or self.latent_continuous)

  def sample_labels(self, key: jax.Array, n: int) -> jax.Array:
    """n labels for G (classes or InfoGAN codes): from label_probs, or uniform."""
    if self.label_probs:
      return jax.random.categorical(key, jnp.log(jnp.asarray(self.label_probs)), shape=(n,))
    return jax.random.randint(key, (n,), 0, self.g_classes)

  def sample_latent(self, key: jax.Array, n: int) -> jax.Array:
    """n latent vectors from the configured distribution."""
    if self.latent_dist == 'gaussian':
      return jax.random.normal(key, (n, self.latent_dim))
    if self.latent_dist == 'uniform':
      return jax.random.uniform(key, (n, self.latent_dim), minval=-1.0, maxval=1.0)
    raise ValueError(f'unknown latent_dist {self.latent_dist!r}')

  def sample_inputs(self, key: jax.Array, n: int, training: bool = True) -> FakeInputs:
    """G's inputs for n images, drawn with `key`: latents, and classes or InfoGAN's code.

    The labels are drawn from a stream folded from `key` (2 in training, 1 for sampling, as
    since jaxgan's first steps), so an unconditional GAN draws the same latents; in training
    with the mode-seeking term, image i and image i + n // 2 get the same label (a pair).
    """
    z = self.sample_latent(key, n)
    if not self.g_classes:
      return FakeInputs(z)
    y = self.sample_labels(jax.random.fold_in(key, 2 if training else 1), n)
    if training and self.mode_seeking:
      h = n // 2
      y = jnp.concatenate([y[:h], y[:h], y[2 * h :]])
    return FakeInputs(z, codes=y) if self.latent_classes else FakeInputs(z, labels=y)

  def scheduled(self) -> dict[str, Schedule]:
    """{field: its Schedule} of the hyperparameters that follow one."""
    fields = (f.name for f in dataclasses.fields(self))
    return {name: v for name in fields if isinstance(v := getattr(self, name), Schedule)}

  def rngs(self, key: jax.Array) -> dict[str, jax.Array]:
    """One key per RNG stream, for one network call in a training step."""
    return {name: jax.random.fold_in(key, i) for i, name in enumerate(self.rng_streams)}


def hyperparameters() -> dict[str, tuple[str, checks.Key]]:
  """{config key ('train.loss', 'model.latent_dim', ...): (GAN field, its Key)} of every GAN
  field a config sets by name."""
  return {
    f'{f.metadata["section"]}.{f.name}': (f.name, f.metadata['key'])
    for f in dataclasses.fields(GAN)
    if 'key' in f.metadata
  }


OPTIMIZERS = ('adam', 'adamw', 'rmsprop', 'sgd')
SCHEDULES = ('constant', 'linear', 'cosine')
K = checks.Key
# config.optim's keys, defined once: DCGAN's Adam for both networks.
OPTIM_SCHEMA: dict[str, checks.Key] = {
  'name': K('adam', checks.one_of(*OPTIMIZERS)),
  'g_lr': schedules.key(2e-4, checks.positive_float),
  'd_lr': schedules.key(2e-4, checks.positive_float),
  # Over the run's updates, to 0 at num_steps; kept for the optimizer state of runs that use it
  # (a schedule in g_lr/d_lr, over images seen, is the general form).
  'schedule': K('constant', checks.one_of(*SCHEDULES)),
  'b1': schedules.key(0.5, checks.beta),  # adam, adamw
  'b2': schedules.key(0.999, checks.beta),  # adam, adamw
  'eps': K(1e-8, checks.positive_float),  # adam, adamw, rmsprop
  'decay': K(0.9, checks.open_unit),  # rmsprop: decay of the squared-gradient average
  'momentum': K(0.0, checks.beta),  # rmsprop, sgd
  'weight_decay': K(0.0, checks.nonneg_float),  # > 0: decoupled weight decay (AdamW)
  # (G's, D's) lazy-regularisation intervals k that the learning rate and Adam's betas are
  # corrected for, as StyleGAN2-ADA does (lr * c, beta ** c, c = k / (k + 1)); (1, 1): none.
  'reg_intervals': K((1, 1), lambda v: _check_intervals(v)),
}


def _check_intervals(v) -> str | None:
  if checks.int_tuple(v) or len(v) != 2:
    return f'must be (G interval, D interval), two positive integers, got {v!r}'
  return None


def learning_rate(optim_config, lr: float, num_updates: int):
  """`lr` itself, or a schedule over the network's `num_updates` updates: `linear` and
  `cosine` decay from lr to 0 at the last update."""
  kind = optim_config.schedule
  if kind == 'constant':
    return lr
  if kind == 'linear':
    return optax.linear_schedule(lr, 0.0, max(num_updates, 1))
  if kind == 'cosine':
    return optax.cosine_decay_schedule(lr, max(num_updates, 1))
  raise ValueError(f'unknown schedule {kind!r}; expected one of {", ".join(SCHEDULES)}')


def lazy_corrected(optim_config, lr, k: int):
  """(lr, (b1, b2)) corrected for a lazy regularisation phase every k updates: StyleGAN2-ADA's
  c = k / (k + 1), lr * c and betas ** c (numbers, or lr an optax or images-seen schedule)."""
  o = optim_config
  if k == 1:
    return lr, (o.b1, o.b2)
  c = k / (k + 1)
  if any(isinstance(schedules.of(b), schedules.Schedule) for b in (o.b1, o.b2)):
    raise ConfigError('optim.reg_intervals corrects numbers: give optim.b1 and b2 as numbers')
  lr = (lambda n: c * lr(n)) if callable(lr) and not isinstance(lr, schedules.Schedule) else c * lr
  return lr, (o.b1**c, o.b2**c)


def optimizer(
  optim_config, lr, run_kimg: float | None = None, betas=None
) -> optax.GradientTransformation:
  """The optimizer `optim_config.name` names, at learning rate `lr` (a number, an optax
  schedule over updates, or a `Schedule` over images seen).

  adam / adamw: betas b1, b2 and eps; adam with weight_decay > 0 is AdamW, decoupled decay
  (Loshchilov & Hutter), not an L2 term in the loss. rmsprop: decay, eps (added outside the
  square root, as in Keras and PyTorch) and momentum. sgd: momentum. Betas given as schedules
  without kimg last `run_kimg` thousand images (`schedules.optimizer` says how they apply).
  `betas` replaces (b1, b2) (`lazy_corrected`).
  """
  o = optim_config
  name, wd, eps = o.name, o.weight_decay, o.eps
  b1, b2 = (schedules.over_run(v, run_kimg) for v in (betas or (o.b1, o.b2)))
  if name == 'adamw' or (name == 'adam' and wd):
    return schedules.optimizer(optax.adamw, lr, b1=b1, b2=b2, eps=eps, weight_decay=wd)
  if name == 'adam':
    return schedules.optimizer(optax.adam, lr, b1=b1, b2=b2, eps=eps)
  momentum = o.momentum or None
  if name == 'rmsprop':
    rmsprop = functools.partial(optax.rmsprop, eps_in_sqrt=False)
    return schedules.optimizer(rmsprop, lr, decay=o.decay, eps=eps, momentum=momentum)
  if name == 'sgd':
    return schedules.optimizer(optax.sgd, lr, momentum=momentum)
  raise ValueError(f'unknown optimizer {name!r}; expected one of {", ".join(OPTIMIZERS)}')


def from_config(config, image_shape: tuple[int, ...], lr_scale: float = 1.0, label_probs=()) -> GAN:
  """The GAN that `config` (complete: `jaxgan.config.complete`) describes: networks from
  `config.model`, optimizers from `config.optim`, and every hyperparameter of GAN by name
  from its section (`hyperparameters`).

  `lr_scale` multiplies both learning rates: on_nan='rollback' lowers them this way.
  `label_probs`: how fake labels are drawn (the training labels' frequencies); (): uniformly.
  """
  classes = config.data.clusters or config.data.num_classes
  if config.model.conditional and not classes:
    raise ConfigError(
      'model.conditional: data.num_classes is 0 (counted in the data when training starts); '
      'give it to build a GAN without the data'
    )
  num_classes = classes if config.model.conditional else 0
  generator, discriminator = models.create(config.model, image_shape, num_classes)
  run_kimg = config.num_steps * config.batch_size * config.train.d_steps / 1000
  hyper = {}
  for key, (field, entry) in hyperparameters().items():
    section, name = key.split('.')
    value = config[section][name]
    hyper[field] = schedules.over_run(value, run_kimg) if entry.schedulable else value
  g_lr, d_lr = (schedules.over_run(config.optim[k], run_kimg) * lr_scale for k in ('g_lr', 'd_lr'))
  g_updates = config.num_steps * config.train.g_steps
  d_updates = config.num_steps * config.train.d_steps
  optimizers = []
  for lr, updates, k in zip(
    (g_lr, d_lr), (g_updates, d_updates), config.optim.reg_intervals, strict=True
  ):
    lr, betas = lazy_corrected(config.optim, learning_rate(config.optim, lr, updates), k)
    optimizers.append(optimizer(config.optim, lr, run_kimg, betas))
  g_optimizer, d_optimizer = optimizers
  return GAN(
    generator=generator,
    discriminator=discriminator,
    g_optimizer=g_optimizer,
    d_optimizer=d_optimizer,
    **hyper,
    num_classes=num_classes,
    label_probs=tuple(label_probs),
  )
