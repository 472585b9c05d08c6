"""The whole training state of a GAN as one immutable pytree, and its initialisation."""

import functools

import flax.struct
import jax
import jax.numpy as jnp

from jaxgan.gan import GAN, PyTree
from jaxgan.objectives import penalties

__all__ = ['GAN', 'GANState', 'PyTree', 'abstract_state', 'init_state', 'initial_ada']


@flax.struct.dataclass
class GANState:
  """Parameters, other variable collections (batch stats) and optimizer state of G and D.

  `rng` is fixed; the key for step t is `fold_in(rng, t)`, so a restored state continues the
  same random stream. `g_ema_params` (same tree as g_params) is the moving average of G's
  params when `GAN.ema_decay` > 0 and equal to g_params otherwise: it is always there, so the
  state's structure, and the checkpoints', does not depend on the config. `ada` holds the
  adaptive augmentation probability and its accumulators (`initial_ada`), zeros unless
  `GAN.augment_p` is 'adaptive'; checkpoints written before it existed restore with it as new.
  `penalty_vars` holds the state of the penalties that keep one ({name: pytree},
  `jaxgan.objectives.penalties.Penalty.init`); networks keep theirs (e.g. StyleGAN2's `w_avg`)
  in their own collections, in g_vars / d_vars.
  """

  step: jax.Array
  rng: jax.Array
  g_params: PyTree
  g_vars: PyTree  # non-parameter collections, e.g. {'batch_stats': ...}
  g_opt_state: PyTree
  d_params: PyTree
  d_vars: PyTree
  d_opt_state: PyTree
  g_ema_params: PyTree
  ada: PyTree
  penalty_vars: PyTree = flax.struct.field(default_factory=dict)


def initial_ada() -> dict[str, jax.Array]:
  """ADA's state at step 0: p, and the sum of the per-D-update mean signs of D's logits on
  real images since p last moved, over `count` D updates (jaxgan.steps)."""
  # Three buffers, not one: the trainer donates the state.
  return {k: jnp.zeros((), jnp.float32) for k in ('p', 'signs', 'count')}


def init_state(gan: GAN, rng: jax.Array, image_shape: tuple[int, ...]) -> GANState:
  """Initialises both networks and optimizers; jit it to place the state where you want."""
  init_key, g_key, d_key = jax.random.split(rng, 3)
  # Conditional networks need labels at init to create their class embeddings (G's are
  # InfoGAN's codes when gan.latent_classes).
  label = {'labels': jnp.zeros((2,), jnp.int32)}
  g_labels, d_labels = (label if gan.g_classes else {}), (label if gan.num_classes else {})
  # 'params' gets the key itself, as with init(key); stochastic layers get streams of their own.
  g_rngs = {'params': g_key, **gan.rngs(jax.random.fold_in(g_key, 1))}
  d_rngs = {'params': d_key, **gan.rngs(jax.random.fold_in(d_key, 1))}
  g_vars = gan.generator.init(g_rngs, jnp.zeros((2, gan.latent_dim)), train=True, **g_labels)
  d_vars = gan.discriminator.init(d_rngs, jnp.zeros((2, *image_shape)), train=True, **d_labels)
  g_params, g_rest = _split_params(g_vars)
  d_params, d_rest = _split_params(d_vars)
  return GANState(
    step=jnp.zeros((), jnp.int32),
    rng=init_key,
    g_params=g_params,
    g_vars=g_rest,
    g_opt_state=gan.g_optimizer.init(g_params),
    d_params=d_params,
    d_vars=d_rest,
    d_opt_state=gan.d_optimizer.init(d_params),
    g_ema_params=jax.tree.map(jnp.copy, g_params),  # distinct buffers: the state is donated
    ada=initial_ada(),
    penalty_vars={p.name: p.init() for p in penalties.active(gan) if p.init},
  )


def _split_params(variables: PyTree) -> tuple[PyTree, dict]:
  rest = {k: v for k, v in variables.items() if k != 'params'}
  return variables['params'], rest


def abstract_state(gan: GAN, image_shape: tuple[int, ...], sharding) -> GANState:
  """Shapes, dtypes and target shardings of the state, for restoring onto this topology."""
  shapes = jax.eval_shape(
    functools.partial(init_state, gan, image_shape=image_shape), jax.random.PRNGKey(0)
  )
  return jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=sharding), shapes)
