"""What the steps take: the real batch, G's inputs, and G's output with the inputs it came from.

All three are pytrees (flax struct dataclasses), so they pass through `jit`, `lax.scan` and
`jax.tree.map` (e.g. `jax.tree.map(lambda x: x[i], batch)` picks the i-th of stacked batches);
a field that is None has no leaves.
"""

import flax.struct
import jax


@flax.struct.dataclass
class Batch:
  """Real images in [-1, 1], NHWC, and their classes (int32) for a conditional GAN, else None.

  The feed (`jaxgan.train.feed`) makes them: drawn, flipped and scaled, on the host or on the
  device. A train step takes one per D update, stacked along a leading axis.
  """

  images: jax.Array
  labels: jax.Array | None = None


@flax.struct.dataclass
class FakeInputs:
  """G's inputs for a batch: latents `z` (N, latent_dim), and either data classes `labels`
  (which D takes too) or InfoGAN's categorical code `codes` (which D's code head must read
  back); None where the GAN has none. Drawn by `GAN.sample_inputs`."""

  z: jax.Array
  labels: jax.Array | None = None
  codes: jax.Array | None = None

  @property
  def g_labels(self) -> jax.Array | None:
    """What G takes as `labels=`: the classes, or InfoGAN's categorical code."""
    return self.labels if self.labels is not None else self.codes


@flax.struct.dataclass
class FakeBatch:
  """G's images for `inputs`, as D sees them (a constant in D's step)."""

  images: jax.Array
  inputs: FakeInputs
