"""Model families by name: `create(model_config, image_shape)` returns (generator, discriminator).

A family is a module (or any object) with
- `SCHEMA`: {key: check} for its own keys under `config.model` (jaxgan.checks);
- `build(model_config, image_shape, num_classes) -> (generator, discriminator)`, flax modules
  with the calling convention of `jaxgan.gan.GAN`;
- optionally `check_image_shape(model_config, image_shape)`, raising ConfigError for images
  the networks cannot make.
`register(name, family)` adds one; `config.model.name` selects it. The keys every family
shares (name, latent_dim, latent_dist, latent_classes, latent_continuous, conditional) are in
`COMMON_SCHEMA`; a family honours InfoGAN's codes (`jaxgan.gan.GAN`) by building G conditional
on `latent_classes` classes and giving D a code head of latent_classes + latent_continuous
outputs.
"""

from collections.abc import Sequence

import flax.linen as nn

from jaxgan import checks, registry
from jaxgan.models import dcgan, resnet

COMMON_SCHEMA: dict[str, checks.Check] = {
  'name': checks.string,
  'latent_dim': checks.integer(1),
  'latent_dist': checks.one_of('gaussian', 'uniform'),
  'latent_classes': checks.integer(0),
  'latent_continuous': checks.integer(0),
  'conditional': checks.boolean,
}

_REGISTRY = registry.Registry('model family', 'model.name', {'dcgan': dcgan, 'resnet': resnet})


def register(name: str, family) -> None:
  _REGISTRY.register(name, family)


def names() -> tuple[str, ...]:
  return _REGISTRY.names()


def get(name: str):
  return _REGISTRY.get(name)


def create(
  model_config, image_shape: Sequence[int], num_classes: int = 0
) -> tuple[nn.Module, nn.Module]:
  """Builds the (generator, discriminator) pair named by `model_config.name`.

  `num_classes` > 0 builds class-conditional networks (they take `labels=`).
  """
  family = get(model_config.name)
  if hasattr(family, 'check_image_shape'):
    family.check_image_shape(model_config, tuple(image_shape))
  return family.build(model_config, tuple(image_shape), num_classes)
