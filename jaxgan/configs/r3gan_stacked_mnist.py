"""R3GAN (Huang et al. 2024) on Stacked MNIST (three random digits, 1000 modes), mode coverage.

  python -m jaxgan.main --config=r3gan_stacked_mnist --workdir=runs/r3gan_stacked_mnist
  python -m jaxgan.main --config=r3gan_stacked_mnist:cpu --workdir=runs/r3gan_smnist_cpu
  python -m jaxgan.evaluate --workdir=runs/r3gan_smnist_cpu  # modes_covered of 1000, mode_kl

brownvc/R3GAN's train.py has no Stacked MNIST preset: this is its CIFAR10 preset's networks and
training (configs/r3gan_cifar10.py: 4 stages of width 768, RpGAN + R1 + R2 with gamma 0.05 ->
0.005, cosine schedules over 20M images, batch 512) for the schedules' 20M images,
unconditional, without x-flips (a flip changes the digits) and without augmentation (not
checked against the paper's Stacked MNIST setting), on the images padded to 32x32 with black
(data.pad=2; the MNIST classifier that counts the modes measures the 28x28 centre,
eval_features='mnist_classifier_centre'). Evaluated on the literature's 26,000 samples.

Options: 'cpu' (the narrow networks of r3gan_cifar10:cpu at batch 64, a run sized for 15-20
minutes on a 2-core CPU, every schedule over the run's length, the EMA's half-life to 10k
images).
"""

import ml_collections

from jaxgan import config as config_lib
from jaxgan.configs import r3gan_cifar10


def get_config(arg: str = '') -> ml_collections.ConfigDict:
  if arg not in ('', 'cpu'):
    raise ValueError(f"bad config argument {arg!r}: give 'cpu' or nothing")
  config = r3gan_cifar10.get_config(arg)  # its networks, training and grids
  # --- Run ---
  if arg != 'cpu':
    config.num_steps = 20_000_000 // config.batch_size  # the schedules' 20M images
  # --- Data ---
  config.data = config_lib.defaults('dcgan', 'stacked_mnist').data
  config.data.pad = 2  # 32x32: R3GAN's stages double from 4x4
  # --- Train ---
  config.train.augment = ''  # 60,000 images: not the limited data augmentation is for
  config.train.augment_p = 0.0
  # --- Eval ---
  config.eval_every = config.num_steps
  config.eval_num_samples = 26_000  # as PacGAN and VEEGAN count modes
  config.eval_features = 'mnist_classifier_centre'  # the digits inside the padding
  return config
