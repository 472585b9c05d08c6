"""Model registry: `create(model_config, image_shape)` returns (generator, discriminator)."""

from collections.abc import Callable, Sequence

import flax.linen as nn

from jaxgan.models import dcgan


def _dcgan(cfg, image_shape: Sequence[int], num_classes: int = 0) -> tuple[nn.Module, nn.Module]:
  g = dcgan.Generator(
    image_shape=tuple(image_shape),
    features=tuple(cfg.g_features),
    upsample=cfg.upsample,
    norm=cfg.norm,
    dtype=cfg.dtype,
    num_classes=num_classes,
  )
  d = dcgan.Discriminator(
    features=tuple(cfg.d_features),
    downsample=cfg.downsample,
    norm=cfg.get('d_norm') or cfg.norm,  # d_norm '' (or absent): D uses model.norm too
    dtype=cfg.dtype,
    spectral_norm=cfg.get('spectral_norm', False),
    num_classes=num_classes,
  )
  return g, d


REGISTRY: dict[str, Callable[..., tuple[nn.Module, nn.Module]]] = {'dcgan': _dcgan}


def create(
  model_config, image_shape: Sequence[int], num_classes: int = 0
) -> tuple[nn.Module, nn.Module]:
  """Builds the (generator, discriminator) pair named by `model_config.name`.

  `num_classes` > 0 builds class-conditional networks (they take `labels=`).
  """
  return REGISTRY[model_config.name](model_config, image_shape, num_classes)
