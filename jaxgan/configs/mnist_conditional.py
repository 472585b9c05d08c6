"""Class-conditional DCGAN on MNIST: G gets a class embedding, D is a projection discriminator.

  python -m jaxgan.main --config=configs/mnist_conditional.py --workdir=runs/mnist_conditional

Sample grids have one row per digit (a column shares one latent). The classic DCGAN
otherwise (configs/mnist_dcgan_classic.py). What it reached at 1,000 and 2,000 iterations and
how long they took on a 2-core CPU: docs/results.md, "The recipes in a fixed budget".
"""

from jaxgan.configs import mnist_dcgan_classic


def get_config():
  config = mnist_dcgan_classic.get_config()
  config.num_grid_samples = 100  # 10 rows (digits) x 10 columns (latents)
  config.data.num_classes = 10
  config.model.conditional = True
  return config
