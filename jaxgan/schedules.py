"""Hyperparameters that follow a schedule over the number of real images seen.

A schedulable key (`checks.Key(..., schedulable=True)`: the learning rates, Adam's betas, the
penalty weights, the EMA's decay or half-life, the augmentation probability) takes a number or
one of these, written as a string in a config or on the command line:

  linear(start, end, kimg)   from start to end over kimg thousand images, then end
  cosine(start, end, kimg)   the same along half a cosine (R3GAN's schedules)
  ramp(value, kimg)          linear(0, value, kimg): a warm-up (StyleGAN2's EMA ramp-up)

Without `kimg`, a schedule runs over the whole run (`num_steps` iterations of `batch_size *
train.d_steps` real images: what the steps count as seen). Inside a step a schedule is a traced
scalar of the images seen when the iteration began, so a resumed run takes the same values;
a number stays a Python number, and its step is the one it was before schedules existed.
"""

import dataclasses
import math
import re
from typing import Any, NamedTuple

import jax.numpy as jnp
import optax

from jaxgan import checks

KINDS = ('linear', 'cosine', 'ramp')
_SPEC = re.compile(r'^\s*(\w+)\s*\((.*)\)\s*$')


@dataclasses.dataclass(frozen=True)
class Schedule:
  """`start` to `end` along `kind` ('linear' or 'cosine') over `kimg` thousand images seen,
  then `end`; kimg None: over the run (`over_run` fills it in)."""

  kind: str
  start: float
  end: float
  kimg: float | None = None

  def __call__(self, images_seen) -> jnp.ndarray:
    if self.kimg is None:
      raise ValueError(f'{self} has no kimg: give one, or build the GAN with gan.from_config')
    t = jnp.clip(jnp.asarray(images_seen, jnp.float32) / (1000.0 * self.kimg), 0.0, 1.0)
    if self.kind == 'cosine':
      t = 0.5 * (1.0 - jnp.cos(jnp.pi * t))
    return self.start + (self.end - self.start) * t

  def __bool__(self) -> bool:  # on unless it is 0 all along
    return bool(self.start or self.end)

  def __mul__(self, factor: float) -> 'Schedule':  # so that weight = 0.5 * gamma still reads
    return dataclasses.replace(self, start=self.start * factor, end=self.end * factor)

  __rmul__ = __mul__

  def __str__(self) -> str:
    kimg = '' if self.kimg is None else f', {self.kimg:g}'
    return f'{self.kind}({self.start:g}, {self.end:g}{kimg})'


def parse(spec: str) -> Schedule:
  """The Schedule a string such as 'cosine(2e-4, 5e-5, 20000)' writes; ValueError if none."""
  m = _SPEC.match(spec)
  if not m or m.group(1) not in KINDS:
    raise ValueError(f'expected a number or one of {", ".join(k + "(...)" for k in KINDS)}')
  kind = m.group(1)
  try:
    args = [float(a) for a in m.group(2).split(',')]
  except ValueError:
    raise ValueError(f'{kind}(...) takes numbers, got {m.group(2)!r}') from None
  if kind == 'ramp':
    if len(args) not in (1, 2):
      raise ValueError('ramp(value, kimg) takes 1 or 2 numbers')
    kind, args = 'linear', [0.0, *args]
  if len(args) not in (2, 3):
    raise ValueError(f'{kind}(start, end, kimg) takes 2 or 3 numbers')
  if len(args) == 3 and not args[2] > 0:
    raise ValueError(f'kimg must be > 0, got {args[2]:g}')
  return Schedule(kind, *args)


def of(value):
  """`value` with a schedule's string parsed into a Schedule; anything else as it is."""
  return parse(value) if isinstance(value, str) and _SPEC.match(value) else value


def key(default, base: checks.Check) -> checks.Key:
  """A config key that takes a number (or what `base` accepts) or a schedule."""
  return checks.Key(default, check(base), any_type=True, schedulable=True)


def check(base: checks.Check) -> checks.Check:
  """`base`, extended to schedules whose ends pass it (0 passes too, where a schedule starts
  or ends: warm-ups start at 0)."""

  def check_value(v):
    if not isinstance(v, str) or base(v) is None:
      return base(v)
    try:
      s = parse(v)
    except ValueError as e:
      return f'{e}; got {v!r}'
    bad = [base(x) for x in (s.start, s.end) if x != 0 and base(x)]
    return f'{bad[0]} (in {v!r})' if bad else None

  return check_value


def over_run(value, run_kimg: float):
  """`value` with a schedule lacking kimg set to last the run (`run_kimg` thousand images)."""
  value = of(value)
  if isinstance(value, Schedule) and value.kimg is None:
    return dataclasses.replace(value, kimg=max(run_kimg, math.ulp(1.0)))
  return value


def value_at(value, images_seen):
  """A number as it is; a Schedule's value after `images_seen` real images."""
  return value(images_seen) if isinstance(value, Schedule) else value


class OptState(NamedTuple):
  """The state of an optimizer with scheduled hyperparameters: their values at the last update
  (logged as metrics) and optax's `inject_hyperparams` state."""

  values: dict
  inner: Any


def optimizer(factory, learning_rate, **hparams) -> optax.GradientTransformation:
  """`factory(learning_rate, **hparams)`; where some are Schedules, one whose update takes
  `images_seen=` and sets them to their values there (`optax.inject_hyperparams`).

  Without schedules it is the factory's own optimizer, state and numbers. Adam's betas follow
  their schedule in the moment averages from the update they change on, as in R3GAN.
  """
  hparams = {'learning_rate': learning_rate, **hparams}
  scheduled = {k: v for k, v in hparams.items() if isinstance(v, Schedule)}
  if not scheduled:
    return factory(**hparams)
  inner = optax.inject_hyperparams(factory)(**{k: value_at(v, 0.0) for k, v in hparams.items()})

  def init(params):
    values = {k: jnp.asarray(s(0.0), jnp.float32) for k, s in scheduled.items()}
    return OptState(values, inner.init(params))

  def update(updates, state, params=None, *, images_seen, **extra):
    values = {k: jnp.asarray(s(images_seen), jnp.float32) for k, s in scheduled.items()}
    hyper = {**state.inner.hyperparams, **values}
    updates, new = inner.update(updates, state.inner._replace(hyperparams=hyper), params, **extra)
    return updates, OptState(values, new)

  return optax.GradientTransformationExtraArgs(init, update)
