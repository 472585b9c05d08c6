"""Regularisation terms of D's or G's loss, and when they run (StyleGAN2-ADA's phases).

A `Penalty` joins one network's loss: on every update of that network (`every` == 1, added to
the main loss: one gradient for both, StyleGAN2-ADA's 'Dboth'), or lazily, as a phase of its
own (`every` = k > 1: a separate update on every k-th update of that network, its loss times k
so that its average strength stays the same; StyleGAN2's lazy R1 and path length). The
built-in ones, WGAN-GP and R1, are on when their weight in the GAN is > 0; others are
registered (`register`) and turned on by name (`train.penalties`).

Each penalty's `fn` gets a `PenaltyInputs`: for D's, `net` is D under the parameters being
trained (images -> logits, with the real batch's labels unless given `labels=`; augmented as D
sees everything; its batch-stat updates dropped) and the fake images are constants; for G's,
`net` is G under the parameters being trained (FakeInputs -> images) and `fake.images` are G's
images of `fake.inputs`, through which the gradient flows.
"""

import dataclasses
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jaxgan import registry, schedules
from jaxgan.batch import Batch, FakeBatch

_GP_KEY = 1  # the interpolates' stream of a sub-step's key (jaxgan.steps), fixed since v0.1


class PenaltyInputs(NamedTuple):
  net: Callable
  batch: Batch
  fake: FakeBatch
  key: jax.Array
  state: Any = None  # the penalty's own state (`Penalty.init`), None for one without
  # G's penalties: G's flax module applied under the parameters being trained, (x, **kw) ->
  # output with the call's RNG streams, e.g. apply(z, method='map') (StyleGAN2's path length).
  apply: Callable | None = None


@dataclasses.dataclass(frozen=True)
class Penalty:
  """`fn(PenaltyInputs) -> scalar`, unweighted, on network `net` ('d' or 'g'); `weight` and
  `every` are numbers, or functions of the GAN that read them off its hyperparameters (a
  weight may be a `jaxgan.schedules.Schedule`, or a number times one).

  A penalty with state of its own (a running mean, as StyleGAN2's path length keeps) gives
  `init() -> pytree`; its `fn` then returns (value, new state) and finds the state in
  `inputs.state`. The state lives in `GANState.penalty_vars[name]` and is checkpointed; it
  changes only where the penalty runs, and the gradient does not flow into it.
  """

  name: str
  net: str
  fn: Callable[[PenaltyInputs], Any]
  weight: Any = 1.0
  every: int | Callable[[Any], int] = 1
  init: Callable[[], Any] | None = None

  def weight_of(self, gan):
    # A Schedule is callable too, but of the images seen, not of the GAN.
    if isinstance(self.weight, schedules.Schedule) or not callable(self.weight):
      return self.weight
    return self.weight(gan)

  def every_of(self, gan) -> int:
    return self.every(gan) if callable(self.every) else self.every


def evaluate(active, inputs: PenaltyInputs, states: dict) -> tuple[dict, dict]:
  """({name: value}, {name: new state} of those with state) of the penalties `active` on
  `inputs`; `states`: their states by name (`GANState.penalty_vars`)."""
  values, new_states = {}, {}
  for p in active:
    if p.init is None:
      values[p.name] = p.fn(inputs)
    else:
      values[p.name], new = p.fn(inputs._replace(state=states[p.name]))
      new_states[p.name] = jax.lax.stop_gradient(new)
  return values, new_states


def _input_grads(d_fn: Callable[[jax.Array], jax.Array], x: jax.Array) -> jax.Array:
  """Per-example gradients of D's logit w.r.t. its input, flattened to (N, pixels).

  The gradient of the summed logits is per-example because each logit depends only on its own
  image (true for D without batch norm; with it, examples are coupled through batch stats).
  """
  grads = jax.grad(lambda x: jnp.sum(d_fn(x)))(x)
  return grads.reshape(x.shape[0], -1)


def gradient_penalty(
  d_fn: Callable[[jax.Array], jax.Array], real: jax.Array, fake: jax.Array, key: jax.Array
) -> jax.Array:
  """WGAN-GP (Gulrajani et al. 2017): mean (||grad D(x)|| - 1)^2 at random mixes x of real, fake."""
  eps = jax.random.uniform(key, (real.shape[0],) + (1,) * (real.ndim - 1))
  x_hat = eps * real + (1 - eps) * fake
  g = _input_grads(d_fn, x_hat)
  # sqrt of a sum with a tiny floor: the norm's gradient is finite even where g = 0.
  norm = jnp.sqrt(jnp.sum(g**2, axis=1) + 1e-12)
  return jnp.mean((norm - 1) ** 2)


def r1_penalty(d_fn: Callable[[jax.Array], jax.Array], real: jax.Array) -> jax.Array:
  """R1 (Mescheder et al. 2018): mean ||grad_x D(x)||^2 on real data (weight it by gamma / 2).
  On fake images, the same is R2 (R3GAN)."""
  g = _input_grads(d_fn, real)
  return jnp.mean(jnp.sum(g**2, axis=1))


def _r2(c: PenaltyInputs) -> jax.Array:
  # D sees the fakes with the fakes' labels, as in D's loss.
  return r1_penalty(lambda x: c.net(x, labels=c.fake.inputs.labels), c.fake.images)


GP = Penalty(
  'gp',
  'd',
  lambda c: gradient_penalty(
    c.net, c.batch.images, c.fake.images, jax.random.fold_in(c.key, _GP_KEY)
  ),
  weight=lambda gan: gan.gp_weight,
)
R1 = Penalty(
  'r1',
  'd',
  lambda c: r1_penalty(c.net, c.batch.images),
  weight=lambda gan: 0.5 * gan.r1_weight,  # gamma / 2
  every=lambda gan: gan.r1_every,
)
# R3GAN's R2: R1 on the fakes, on every D update (its gradient penalty is not lazy).
R2 = Penalty('r2', 'd', _r2, weight=lambda gan: 0.5 * gan.r2_weight)
BUILT_IN = (GP, R1, R2)  # on when their weight is > 0, in this order

_REGISTRY = registry.Registry('penalty', 'train.penalties')


def register(penalty: Penalty) -> Penalty:
  """Adds `penalty`; `train.penalties` (comma-separated names) then turns it on."""
  return _REGISTRY.register(penalty.name, penalty)


def get(name: str) -> Penalty:
  return _REGISTRY.get(name)


def names() -> tuple[str, ...]:
  return _REGISTRY.names()


def parse(spec: str) -> tuple[str, ...]:
  """('a', 'b') from 'a,b'; () from ''."""
  return tuple(s.strip() for s in spec.split(',') if s.strip())


def active(gan) -> tuple[Penalty, ...]:
  """The penalties `gan` trains with: the built-in ones it weights, then those it names."""
  return tuple(p for p in BUILT_IN if p.weight_of(gan)) + tuple(
    get(name) for name in parse(gan.penalties)
  )
