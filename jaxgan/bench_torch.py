"""PyTorch reference of jaxgan's DCGAN and train step, for speed and exactness comparisons.

Same layers, initialisation, batch norm, loss, Adam and step order as `jaxgan.steps.train_step`
with the default config: a D step on a real batch and a detached fake batch, then a G step that
reuses the same fake batch. Written as plain PyTorch eager code, the way its DCGAN example is.
PyTorch is an optional extra (`pip install -e .[torch]`); only this module imports it.

  python -m jaxgan.bench_torch --batch_size=64 --steps=50

`jaxgan.bench --torch` runs it as a worker process (`--serve`), so that PyTorch keeps its own
process-wide settings (threads, malloc) while the two alternate.
"""

import argparse
import contextlib
import json
import sys
import time
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


class Generator(nn.Module):
  """z (N, latent) -> images (N, C, H, W): dense, BN, ReLU, then k4 s2 p1 transposed convs."""

  def __init__(self, latent_dim: int, image_shape: Sequence[int], features: Sequence[int]):
    super().__init__()
    height, width, channels = image_shape
    scale = 2 ** len(features)
    self.start = (features[0], height // scale, width // scale)
    self.dense = nn.Linear(latent_dim, int(np.prod(self.start)), bias=False)
    self.dense_bn = nn.BatchNorm2d(features[0])
    ups = []
    for cin, cout in zip(features, features[1:], strict=False):
      ups += [nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]
    ups += [nn.ConvTranspose2d(features[-1], channels, 4, 2, 1), nn.Tanh()]
    self.ups = nn.Sequential(*ups)

  def forward(self, z: torch.Tensor) -> torch.Tensor:
    x = self.dense(z).view(z.shape[0], *self.start)
    return self.ups(F.relu(self.dense_bn(x)))


class Discriminator(nn.Module):
  """images (N, C, H, W) -> logits (N,): k4 s2 p1 convs with LeakyReLU(0.2), BN after the first."""

  def __init__(self, image_shape: Sequence[int], features: Sequence[int]):
    super().__init__()
    height, width, channels = image_shape
    layers = [nn.Conv2d(channels, features[0], 4, 2, 1), nn.LeakyReLU(0.2)]
    for cin, cout in zip(features, features[1:], strict=False):
      layers += [nn.Conv2d(cin, cout, 4, 2, 1, bias=False), nn.BatchNorm2d(cout), nn.LeakyReLU(0.2)]
    self.convs = nn.Sequential(*layers)
    scale = 2 ** len(features)
    self.dense = nn.Linear(features[-1] * (height // scale) * (width // scale), 1)

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    return self.dense(self.convs(x).flatten(1))[:, 0]


def _init_dcgan(module: nn.Module) -> None:
  """DCGAN initialisation as jaxgan does it: weights N(0, 0.02), biases 0, BN scale 1."""
  for m in module.modules():
    if isinstance(m, nn.Linear | nn.Conv2d | nn.ConvTranspose2d):
      nn.init.normal_(m.weight, 0.0, 0.02)
      if m.bias is not None:
        nn.init.zeros_(m.bias)
    elif isinstance(m, nn.BatchNorm2d):
      m.momentum = 0.1  # flax momentum 0.9
      m.eps = 1e-5
      nn.init.ones_(m.weight)
      nn.init.zeros_(m.bias)


class TorchDCGAN:
  """G, D and their Adam optimizers; `step(real, z)` is one jaxgan `train_step`."""

  def __init__(self, config, image_shape: Sequence[int], seed: int = 0):
    torch.manual_seed(seed)
    model, optim = config.model, config.optim
    self.latent_dim = model.latent_dim
    self.g = Generator(model.latent_dim, image_shape, model.g_features)
    self.d = Discriminator(image_shape, model.d_features)
    _init_dcgan(self.g)
    _init_dcgan(self.d)
    betas = (optim.b1, optim.b2)
    self.g_opt = torch.optim.Adam(self.g.parameters(), lr=optim.g_lr, betas=betas)
    self.d_opt = torch.optim.Adam(self.d.parameters(), lr=optim.d_lr, betas=betas)

  def step(self, real: torch.Tensor, z: torch.Tensor) -> dict[str, float]:
    """One D update on real and the detached fake G(z), then one G update on the same fake."""
    fake = self.g(z)
    self.d_opt.zero_grad(set_to_none=True)
    real_logits = self.d(real)
    fake_logits = self.d(fake.detach())
    d_loss = F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()
    d_loss.backward()
    self.d_opt.step()

    self.g_opt.zero_grad(set_to_none=True)
    with _frozen_running_stats(self.d):  # jaxgan's G step leaves D's batch stats as they were
      g_loss = F.softplus(-self.d(fake)).mean()
    g_loss.backward()
    self.g_opt.step()
    return {'d_loss': d_loss.detach(), 'g_loss': g_loss.detach()}


@contextlib.contextmanager
def _frozen_running_stats(module: nn.Module):
  """BN keeps normalising with batch statistics but momentum 0 leaves the running ones as is."""
  bns = [m for m in module.modules() if isinstance(m, nn.BatchNorm2d)]
  for m in bns:
    m.momentum = 0.0
  try:
    yield
  finally:
    for m in bns:
      m.momentum = 0.1


def real_batch(images: torch.Tensor, batch_size: int) -> torch.Tensor:
  """A random batch of uint8 NHWC images as floats in [-1, 1], NCHW (what jaxgan does on device)."""
  idx = torch.randint(0, images.shape[0], (batch_size,))
  return (images[idx].float() / 127.5 - 1.0).permute(0, 3, 1, 2)


def time_steps(net: TorchDCGAN, images: torch.Tensor, batch_size: int, num_steps: int) -> float:
  """Runs `num_steps` train steps on random batches of `images`; returns seconds taken."""
  t0 = time.perf_counter()
  for _ in range(num_steps):
    net.step(real_batch(images, batch_size), torch.randn(batch_size, net.latent_dim))
  return time.perf_counter() - t0


# --- Loading jaxgan's parameters -----------------------------------------------------------------


def _t(a) -> torch.Tensor:
  return torch.from_numpy(np.array(a, dtype=np.float32))


def _load_bn(bn: nn.BatchNorm2d, params: dict, stats: dict) -> None:
  bn.weight.data.copy_(_t(params['scale']))
  bn.bias.data.copy_(_t(params['bias']))
  bn.running_mean.copy_(_t(stats['mean']))
  bn.running_var.copy_(_t(stats['var']))


def _sorted_layers(params: dict, prefix: str) -> list[str]:
  """Flax auto-names ('Conv4x4s2_0', 'Conv4x4s2_1', ...) of one layer kind, in call order."""
  return sorted((k for k in params if k.startswith(prefix)), key=lambda k: int(k.split('_')[-1]))


def load_jaxgan_state(net: TorchDCGAN, state) -> None:
  """Copies a jaxgan GANState's params and batch stats into `net` (NHWC/HWIO -> NCHW/OIHW)."""
  g, gs = state.g_params, state.g_vars.get('batch_stats', {})
  c, h, w = net.g.start
  # flax's dense output is reshaped to (h, w, c); torch's to (c, h, w).
  k = np.asarray(g['Dense_0']['kernel']).reshape(-1, h, w, c)
  net.g.dense.weight.data.copy_(_t(k.transpose(3, 1, 2, 0).reshape(c * h * w, -1)))
  bns = _sorted_layers(g, 'BatchNorm')
  _load_bn(net.g.dense_bn, g[bns[0]], gs[bns[0]])
  convs = [m for m in net.g.ups if isinstance(m, nn.ConvTranspose2d)]
  g_bns = [m for m in net.g.ups if isinstance(m, nn.BatchNorm2d)]
  for m, name in zip(convs, _sorted_layers(g, 'ConvTranspose4x4s2'), strict=True):
    # jaxgan's kernel (kh, kw, in, out) has torch's transposed-conv semantics, no flip.
    m.weight.data.copy_(_t(np.asarray(g[name]['kernel']).transpose(2, 3, 0, 1)))
    if m.bias is not None:
      m.bias.data.copy_(_t(g[name]['bias']))
  for m, name in zip(g_bns, bns[1:], strict=True):
    _load_bn(m, g[name], gs[name])

  d, ds = state.d_params, state.d_vars.get('batch_stats', {})
  convs = [m for m in net.d.convs if isinstance(m, nn.Conv2d)]
  for m, name in zip(convs, _sorted_layers(d, 'Conv4x4s2'), strict=True):
    m.weight.data.copy_(_t(np.asarray(d[name]['kernel']).transpose(3, 2, 0, 1)))
    if m.bias is not None:
      m.bias.data.copy_(_t(d[name]['bias']))
  d_bns = [m for m in net.d.convs if isinstance(m, nn.BatchNorm2d)]
  for m, name in zip(d_bns, _sorted_layers(d, 'BatchNorm'), strict=True):
    _load_bn(m, d[name], ds[name])
  # flax flattens (h, w, c); torch flattens (c, h, w).
  k = np.asarray(d['Dense_0']['kernel'])
  c = convs[-1].out_channels
  hw = k.shape[0] // c
  net.d.dense.weight.data.copy_(_t(k.reshape(hw, c, 1).transpose(2, 1, 0).reshape(1, -1)))
  net.d.dense.bias.data.copy_(_t(d['Dense_0']['bias']))


def serve(image_shape: Sequence[int], num_images: int) -> None:
  """Worker for `jaxgan.bench --torch`: a config as JSON on stdin's first line, then step counts.

  Builds the net and the same synthetic uint8 images as the bench (seeded by config.seed),
  prints its versions as one JSON line, then for each line N on stdin runs N train steps and
  prints the seconds they took.
  """
  import ml_collections

  config = ml_collections.ConfigDict(json.loads(sys.stdin.readline()))
  net = TorchDCGAN(config, image_shape, seed=config.seed)
  rng = np.random.default_rng(config.seed)
  pixels = rng.integers(0, 256, (num_images, *image_shape)).astype(np.uint8)
  images = torch.from_numpy(pixels)
  print(json.dumps({'torch': torch.__version__, 'threads': torch.get_num_threads()}), flush=True)
  for line in sys.stdin:
    print(time_steps(net, images, config.batch_size, int(line)), flush=True)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--batch_size', type=int, default=64)
  parser.add_argument('--steps', type=int, default=50)
  parser.add_argument('--serve', action='store_true', help='worker mode for jaxgan.bench')
  parser.add_argument('--image_shape', default='28,28,1', help='H,W,C (with --serve)')
  parser.add_argument('--num_images', type=int, default=60_000, help='(with --serve)')
  args = parser.parse_args()
  if args.serve:
    serve(tuple(int(v) for v in args.image_shape.split(',')), args.num_images)
    return
  from configs import mnist  # standalone: the default config, from the repository root

  net = TorchDCGAN(mnist.get_config(), (28, 28, 1))
  images = torch.randint(0, 256, (60000, 28, 28, 1), dtype=torch.uint8)
  time_steps(net, images, args.batch_size, 5)  # warm-up: allocator, oneDNN primitive caches
  seconds = time_steps(net, images, args.batch_size, args.steps)
  print(
    f'torch {torch.__version__}, {torch.get_num_threads()} threads: '
    f'{args.steps / seconds:.2f} steps/s at batch {args.batch_size}'
  )


if __name__ == '__main__':
  main()
