"""The best MNIST samples jaxgan makes in at most an hour on a 2-core CPU.

  python -m jaxgan.main --config=configs/mnist_best.py --workdir=runs/mnist_best

configs/mnist.py (DCGAN on 200 k-means clusters of the pixels, no labels; the mode-seeking
term; D at half G's learning rate; G's EMA) trained four times longer: 16,000 steps, evaluated
every 4,000. Its figures and run time on a 2-core CPU: docs/results.md, "The long recipe".
"""

from jaxgan.configs import mnist


def get_config():
  config = mnist.get_config()
  config.num_steps = 16_000
  config.sample_every = 2000
  config.checkpoint_every = 2000
  config.eval_every = 4000
  return config
