"""Model registry: `create(model_config, image_shape)` returns (generator, discriminator)."""

from collections.abc import Callable, Sequence

import flax.linen as nn

from jaxgan.models import dcgan


def _dcgan(cfg, image_shape: Sequence[int]) -> tuple[nn.Module, nn.Module]:
  g = dcgan.Generator(
    image_shape=tuple(image_shape),
    features=tuple(cfg.g_features),
    upsample=cfg.upsample,
    norm=cfg.norm,
    dtype=cfg.dtype,
  )
  d = dcgan.Discriminator(
    features=tuple(cfg.d_features), downsample=cfg.downsample, norm=cfg.norm, dtype=cfg.dtype
  )
  return g, d


REGISTRY: dict[str, Callable[..., tuple[nn.Module, nn.Module]]] = {'dcgan': _dcgan}


def create(model_config, image_shape: Sequence[int]) -> tuple[nn.Module, nn.Module]:
  """Builds the (generator, discriminator) pair named by `model_config.name`."""
  return REGISTRY[model_config.name](model_config, image_shape)
