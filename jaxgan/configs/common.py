"""What every recipe builds on: the config with every key at its one definition's default
(`jaxgan.config.defaults`: the loop's keys in jaxgan/config.py, the GAN's on jaxgan.gan.GAN's
fields, each model family's and data source's in its SCHEMA, each with what it means), which
are the classic DCGAN's values (Radford et al. 2016: Adam 2e-4 with b1=0.5, batch 64, BCE with
the non-saturating G loss, batch norm, one D update per G update, no EMA); and the sections of
the models and data sources the recipes use. Not a recipe itself: it has no `get_config`.

A recipe's `get_config` starts from `base()` and sets, section by section (run, data, model,
optim, train, eval), what it changes: always `num_steps`, `data` and `eval_every`.
configs/mnist_dcgan_classic.py is `base()` on MNIST as it is.
"""

import ml_collections

from jaxgan import config as config_lib


def base() -> ml_collections.ConfigDict:
  """Every key at its default, DCGAN's networks on MNIST (recipes replace `data`)."""
  config = config_lib.defaults('dcgan', 'mnist')
  config.train.ema_start = 2000  # with train.ema_decay > 0: the EMA averages from step 2,000
  return config


def dcgan_model(
  g_features: tuple[int, ...] = (128, 64), d_features: tuple[int, ...] = (64, 128)
) -> ml_collections.ConfigDict:
  """DCGAN's networks (jaxgan.models.dcgan): G from a map 2 ** len(g_features) times smaller
  than the images, D its mirror image; the default widths are MNIST's (G: dense -> 7x7x128 ->
  14x14x64 -> 28x28x1; D: 28x28 -> 14x14x64 -> 7x7x128 -> dense)."""
  model = config_lib.defaults('dcgan', 'mnist').model
  model.g_features, model.d_features = g_features, d_features
  return model


def mnist_data() -> ml_collections.ConfigDict:
  """MNIST's training split: 60,000 images of 28x28x1, ten digit classes."""
  return config_lib.defaults('dcgan', 'mnist').data


def folder_data(resolution: int = 64) -> ml_collections.ConfigDict:
  """A folder of images (README "Your own images"), prepared once into a cache; data.dir
  (required) is the folder, or holds train/ (and test/)."""
  data = config_lib.defaults('dcgan', 'folder').data
  data.resolution = resolution
  return data


def options(arg: str, flags: tuple[str, ...]) -> tuple[str, set[str]]:
  """(data source, flags) of a CIFAR-10 recipe's argument such as 'folder,cpu': at most one
  source ('cifar10' or 'folder'; '': the tarball) and any of `flags`, comma-separated."""
  given = [a for a in arg.split(',') if a]
  sources = [a for a in given if a in ('cifar10', 'folder')]
  if len(sources) > 1 or len(given) != len(set(given)) or not set(given) <= {*sources, *flags}:
    raise ValueError(
      f"bad config argument {arg!r}: give at most one source ('cifar10' or 'folder') and "
      f"optionally {', '.join(map(repr, flags))}, comma-separated (e.g. 'folder,{flags[-1]}')"
    )
  return (sources[0] if sources else ''), set(given) - set(sources)


def cifar10_data(source: str = '') -> ml_collections.ConfigDict:
  """CIFAR-10's training split: the official tarball (source '' or 'cifar10') or, with
  'folder', a folder of its images in one sub-folder per class (labels from the folders)."""
  if source == 'folder':
    data = folder_data(resolution=32)
    data.labels = 'folders'
    return data
  if source not in ('', 'cifar10'):
    raise ValueError(f"unknown CIFAR-10 source {source!r}; use 'cifar10' or 'folder'")
  return config_lib.defaults('dcgan', 'cifar10').data
