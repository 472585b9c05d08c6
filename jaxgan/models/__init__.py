"""Model families by name: `create(model_config, image_shape)` returns (generator, discriminator).

A family is a module (or any object) with
- `SCHEMA`: {key: check} for its own keys under `config.model` (jaxgan.checks);
- `build(model_config, image_shape, num_classes) -> (generator, discriminator)`, flax modules
  with the calling convention of `jaxgan.gan.GAN`;
- optionally `check_image_shape(model_config, image_shape)`, raising ConfigError for images
  the networks cannot make.
`register(name, family)` adds one; `config.model.name` selects it. The keys every family
shares are `COMMON_SCHEMA` and the GAN's own (latent_dim, latent_dist, latent_classes,
latent_continuous: `jaxgan.gan.hyperparameters`); a family honours InfoGAN's codes
(`jaxgan.gan.GAN`) by building G conditional on `latent_classes` classes and giving D a code
head of latent_classes + latent_continuous outputs.
"""

from collections.abc import Sequence

import flax.linen as nn

from jaxgan import checks, registry
from jaxgan.models import dcgan, r3gan, resnet, stylegan2

COMMON_SCHEMA: dict[str, checks.Check | checks.Key] = {
  'name': checks.string,  # no default: every config names its family
  # Class-conditional G and projection D, on data.num_classes (or data.clusters) classes.
  'conditional': checks.Key(False, checks.boolean),
}

_REGISTRY = registry.Registry(
  'model family',
  'model.name',
  {'dcgan': dcgan, 'resnet': resnet, 'stylegan2': stylegan2, 'r3gan': r3gan},
)


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
