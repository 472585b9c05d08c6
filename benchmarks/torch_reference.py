"""PyTorch references of jaxgan's networks and train step, for speed and exactness comparisons.

Two model families here, as `config.model.name` picks them in jaxgan (StyleGAN2's reference is
benchmarks/torch_stylegan2.py, which the worker below serves too): `dcgan` (jaxgan.models.dcgan
with batch norm, transposed convs up, strided convs down) and `resnet` (jaxgan.models.resnet:
SNGAN's ResNet G and D, spectral norm by one power iteration per call as in
`layers.spectral_apply`). Same layers, initialisation, batch norm, losses, Adam and schedule as
`jaxgan.steps.train_step`: `train.d_steps` D updates, each on its own real batch and a detached
fake batch from fresh latents, then `train.g_steps` G updates, the first reusing the last D
update's fake batch. `model.dtype='bfloat16'` runs both networks under torch.autocast. Configs
using what this module does not mirror (conditional networks, penalties, augmentation, EMA,
other norms or layers) are refused by `unmirrored`. Written as plain PyTorch eager code.
PyTorch is an optional extra (`pip install -e .[torch]`); jaxgan's own modules never import
it. This file is part of a checkout of the repository, not of the installed package.

  python -m benchmarks.torch_reference --batch_size=64 --steps=50 [--config=cifar10_sngan] \
    [--device=cuda]   # from the repository root

`jaxgan.bench --torch` runs it as a worker process (`--serve`), so that PyTorch keeps its own
process-wide settings (threads, malloc) while the two alternate.
"""

import argparse
import contextlib
import importlib
import json
import math
import sys
import time
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

# --- Losses: (d_loss(real_logits, fake_logits), g_loss(fake_logits)), jaxgan.objectives' -------

LOSSES = {
  'non_saturating': (
    lambda r, f: F.softplus(-r).mean() + F.softplus(f).mean(),
    lambda f: F.softplus(-f).mean(),
  ),
  'minimax': (
    lambda r, f: F.softplus(-r).mean() + F.softplus(f).mean(),
    lambda f: -F.softplus(f).mean(),
  ),
  'least_squares': (
    lambda r, f: 0.5 * ((r - 1) ** 2).mean() + 0.5 * (f**2).mean(),
    lambda f: 0.5 * ((f - 1) ** 2).mean(),
  ),
  'hinge': (lambda r, f: F.relu(1 - r).mean() + F.relu(1 + f).mean(), lambda f: -f.mean()),
  'wasserstein': (lambda r, f: f.mean() - r.mean(), lambda f: -f.mean()),
}


def unmirrored(config) -> list[str]:
  """The config settings this module has no PyTorch counterpart for, as 'key=value' strings.

  Settings that change neither the network nor the work of a step (data, logging, sampling,
  standing statistics) are not looked at.
  """
  model, train, optim = config.model, config.train, config.optim
  want = {
    'model.name': (model.name, ('dcgan', 'resnet')),
    'model.conditional': (model.get('conditional', False), (False,)),
    'model.latent_classes': (model.get('latent_classes', 0), (0,)),
    'model.latent_continuous': (model.get('latent_continuous', 0), (0,)),
    'model.dtype': (model.get('dtype', 'float32'), ('float32', 'bfloat16')),
    'train.loss': (train.get('loss', 'non_saturating'), tuple(LOSSES)),
    'train.balance': (train.get('balance', 'none'), ('none',)),
    'train.augment': (train.get('augment', ''), ('',)),
    'optim.name': (optim.get('name', 'adam'), ('adam', 'adamw')),
    'optim.schedule': (optim.get('schedule', 'constant'), ('constant',)),
  }
  for key in ('gp_weight', 'r1_weight', 'label_smoothing', 'ema_decay', 'mode_seeking'):
    want[f'train.{key}'] = (train.get(key, 0.0), (0, 0.0))
  if model.name == 'dcgan':
    want |= {
      'model.upsample': (model.get('upsample', 'conv_transpose'), ('conv_transpose',)),
      'model.downsample': (model.get('downsample', 'strided_conv'), ('strided_conv',)),
      'model.norm': (model.get('norm', 'batch'), ('batch',)),
      'model.d_norm': (model.get('d_norm', ''), ('', 'batch')),
      'model.spectral_norm': (model.get('spectral_norm', False), (False,)),
      'model.g_dropout': (model.get('g_dropout', 0.0), (0, 0.0)),
      'model.d_dropout': (model.get('d_dropout', 0.0), (0, 0.0)),
      'model.d_activation': (model.get('d_activation', 'leaky_relu'), ('leaky_relu',)),
      'model.d_minibatch_std': (model.get('d_minibatch_std', 0), (0,)),
    }
  elif model.name == 'resnet':
    want['model.attention_res'] = (model.get('attention_res', 0), (0,))
  return [f'{k}={v!r}' for k, (v, allowed) in want.items() if v not in allowed]


# --- Spectral norm -------------------------------------------------------------------------------


def _l2_normalize(x: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
  return x * torch.rsqrt((x * x).sum() + eps)


class _SpectralNormed:
  """Mixin for a layer that uses its `weight` divided by the weight's largest singular value.

  jaxgan's estimate (flax's SpectralNorm under `layers.spectral_apply`): one power iteration
  per call from the stored left vector `u` (one entry per output unit), no gradient through
  the iteration's vectors, the weight seen as an (out, fan_in) matrix. `u` is a buffer, so
  it travels with the state dict; it is stored back in training unless `keep_stats` is off
  (jaxgan's G step discards the statistics D computes).
  """

  keep_stats = True

  def __init__(self, *args, **kwargs):
    super().__init__(*args, **kwargs)  # the layer's own (nn.Conv2d, nn.Linear)
    self.register_buffer('u', _l2_normalize(torch.randn(1, self.weight.shape[0])))

  def normalized_weight(self) -> torch.Tensor:
    w = self.weight.flatten(1)
    # In float32 under autocast too, as flax normalises the float32 params.
    with torch.autocast(w.device.type, enabled=False):
      with torch.no_grad():
        v = _l2_normalize(self.u @ w)
        u = _l2_normalize(v @ w.T)
        if self.training and self.keep_stats:
          self.u.copy_(u)
      sigma = (u @ w @ v.T)[0, 0]
      return self.weight / torch.where(sigma != 0, sigma, torch.ones_like(sigma))


class SNConv2d(_SpectralNormed, nn.Conv2d):
  def forward(self, x: torch.Tensor) -> torch.Tensor:
    return self._conv_forward(x, self.normalized_weight(), self.bias)


class SNLinear(_SpectralNormed, nn.Linear):
  def forward(self, x: torch.Tensor) -> torch.Tensor:
    return F.linear(x, self.normalized_weight(), self.bias)


def _conv(cin: int, cout: int, k: int, sn: bool, bias: bool = True) -> nn.Conv2d:
  """Stride-1 'SAME' conv (jaxgan's layers.Conv), spectrally normalised if `sn`."""
  return (SNConv2d if sn else nn.Conv2d)(cin, cout, k, padding=k // 2, bias=bias)


def _linear(cin: int, cout: int, sn: bool) -> nn.Linear:
  return (SNLinear if sn else nn.Linear)(cin, cout)


# --- DCGAN ---------------------------------------------------------------------------------------


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
    ups += [nn.ConvTranspose2d(features[-1], channels, 4, 2, 1)]
    self.ups = nn.Sequential(*ups)

  def forward(self, z: torch.Tensor) -> torch.Tensor:
    x = self.dense(z).view(z.shape[0], *self.start)
    return torch.tanh(self.ups(F.relu(self.dense_bn(x))).float())


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
    return self.dense(self.convs(x).flatten(1))[:, 0].float()


def _init_dcgan(module: nn.Module) -> None:
  """DCGAN initialisation as jaxgan does it: weights N(0, 0.02), biases 0, BN scale 1."""
  for m in module.modules():
    if isinstance(m, nn.Linear | nn.Conv2d | nn.ConvTranspose2d):
      nn.init.normal_(m.weight, 0.0, 0.02)
      if m.bias is not None:
        nn.init.zeros_(m.bias)
    elif isinstance(m, nn.BatchNorm2d):
      _init_bn(m)


def _init_bn(m: nn.BatchNorm2d) -> None:
  m.momentum = 0.1  # flax momentum 0.9
  m.eps = 1e-5
  nn.init.ones_(m.weight)
  nn.init.zeros_(m.bias)


# --- ResNet (SNGAN) ------------------------------------------------------------------------------
# Module names are those of jaxgan.models.resnet's flax modules, so that `load_jaxgan_state`
# finds each layer's weights by its path.


def _up(x: torch.Tensor) -> torch.Tensor:
  return F.interpolate(x, scale_factor=2, mode='nearest')


class ResGBlock(nn.Module):
  """(BN-ReLU-up-conv3x3-BN-ReLU-conv3x3)(x) + up(conv1x1(x)), as resnet.GBlock."""

  def __init__(self, cin: int, cout: int, sn: bool):
    super().__init__()
    self.bn1 = nn.BatchNorm2d(cin)
    self.conv1 = _conv(cin, cout, 3, sn, bias=False)  # bn2 cancels a bias
    self.bn2 = nn.BatchNorm2d(cout)
    self.conv2 = _conv(cout, cout, 3, sn)
    self.shortcut = _conv(cin, cout, 1, sn)

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    h = self.conv1(_up(F.relu(self.bn1(x))))
    h = self.conv2(F.relu(self.bn2(h)))
    # The 1x1 conv on the small map, then upsampled: jaxgan's cheaper, equal order.
    return h + _up(self.shortcut(x))


class ResDBlock(nn.Module):
  """(ReLU-conv3x3-ReLU-conv3x3-avgpool)(x) + conv1x1(avgpool(x)), as resnet.DBlock: no
  pooling unless `downsample`, the identity shortcut where that keeps the width, and no ReLU
  before the `first` block's conv (its input is the image)."""

  def __init__(self, cin: int, cout: int, downsample: bool, first: bool, sn: bool):
    super().__init__()
    self.downsample, self.first = downsample, first
    self.conv1 = _conv(cin, cout, 3, sn)
    self.conv2 = _conv(cout, cout, 3, sn)
    self.shortcut = _conv(cin, cout, 1, sn) if first or downsample or cin != cout else None

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    h = self.conv1(x if self.first else F.relu(x))
    h = self.conv2(F.relu(h))
    shortcut = x
    if self.downsample:
      h, shortcut = F.avg_pool2d(h, 2), F.avg_pool2d(x, 2)
    if self.shortcut is not None:
      shortcut = self.shortcut(shortcut)
    return h + shortcut


class ResGenerator(nn.Module):
  """z -> dense -> (ch * mults[0], H / 2**k, W / 2**k) -> k up blocks -> BN-ReLU-conv3x3 -> tanh."""

  def __init__(self, latent_dim: int, image_shape: Sequence[int], ch, mults, sn: bool):
    super().__init__()
    height, width, channels = image_shape
    k = len(mults) - 1
    widths = [ch * m for m in mults]
    self.start = (widths[0], height >> k, width >> k)
    self.dense = _linear(latent_dim, int(np.prod(self.start)), sn)
    self.blocks = [f'block{i}' for i in range(k)]
    for name, cin, cout in zip(self.blocks, widths, widths[1:], strict=False):
      self.add_module(name, ResGBlock(cin, cout, sn))
    self.bn = nn.BatchNorm2d(widths[-1])
    self.conv_out = _conv(widths[-1], channels, 3, sn)

  def forward(self, z: torch.Tensor) -> torch.Tensor:
    x = self.dense(z).view(z.shape[0], *self.start)
    for name in self.blocks:
      x = getattr(self, name)(x)
    return torch.tanh(self.conv_out(F.relu(self.bn(x))).float())


class ResDiscriminator(nn.Module):
  """images -> len(mults) blocks (the first `downsample` halving) -> ReLU -> sum over positions
  -> dense -> logits (N,)."""

  def __init__(self, image_shape: Sequence[int], ch, mults, downsample: int, sn: bool):
    super().__init__()
    cin = image_shape[2]
    self.blocks = [f'block{i}' for i in range(len(mults))]
    for i, (name, m) in enumerate(zip(self.blocks, mults, strict=True)):
      self.add_module(name, ResDBlock(cin, ch * m, i < downsample, i == 0, sn))
      cin = ch * m
    self.dense = _linear(cin, 1, sn)

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    for name in self.blocks:
      x = getattr(self, name)(x)
    return self.dense(F.relu(x).sum(dim=(2, 3)))[:, 0].float()


def _init_resnet(module: nn.Module) -> None:
  """SNGAN's initialisation as jaxgan.models.resnet does it: Glorot-uniform, with gain sqrt(2)
  on the residual branches' convs (conv1, conv2: they follow ReLUs), biases 0, BN scale 1."""
  for name, m in module.named_modules():
    if isinstance(m, nn.Conv2d | nn.Linear):
      gain = math.sqrt(2) if name.endswith(('conv1', 'conv2')) else 1.0
      nn.init.xavier_uniform_(m.weight, gain)
      if m.bias is not None:
        nn.init.zeros_(m.bias)
    elif isinstance(m, nn.BatchNorm2d):
      _init_bn(m)


def build(model_config, image_shape: Sequence[int]) -> tuple[nn.Module, nn.Module]:
  """(G, D) of the family `model_config.name`, initialised as jaxgan initialises them."""
  m = model_config
  if m.name == 'dcgan':
    g = Generator(m.latent_dim, image_shape, m.g_features)
    d = Discriminator(image_shape, m.d_features)
    init = _init_dcgan
  elif m.name == 'resnet':
    g = ResGenerator(m.latent_dim, image_shape, m.g_ch, m.g_mults, m.g_spectral_norm)
    d = ResDiscriminator(image_shape, m.d_ch, m.d_mults, m.d_downsample, m.spectral_norm)
    init = _init_resnet
  else:
    raise ValueError(f'no PyTorch reference of model family {m.name!r}')
  init(g)
  init(d)
  return g, d


# --- The train step ------------------------------------------------------------------------------


class TorchGAN:
  """G, D, their optimizers and jaxgan's schedule; `step(reals, latents)` is one `train_step`."""

  def __init__(self, config, image_shape: Sequence[int], seed: int = 0, device: str = 'cpu'):
    problems = unmirrored(config)
    if problems:
      raise ValueError(f'the PyTorch reference does not mirror {", ".join(problems)}')
    torch.manual_seed(seed)
    model, optim, train = config.model, config.optim, config.train
    self.device = torch.device(device)
    self.g, self.d = (net.to(self.device) for net in build(model, image_shape))
    self.latent_dim = model.latent_dim
    self.uniform_latents = model.get('latent_dist', 'gaussian') == 'uniform'
    self.d_steps, self.g_steps = train.get('d_steps', 1), train.get('g_steps', 1)
    self.d_loss, self.g_loss = LOSSES[train.get('loss', 'non_saturating')]
    self.bf16 = model.get('dtype', 'float32') == 'bfloat16'
    kw = dict(betas=(optim.b1, optim.b2), eps=optim.get('eps', 1e-8))
    weight_decay = optim.get('weight_decay', 0.0)
    opt = torch.optim.Adam
    if optim.get('name', 'adam') == 'adamw' or weight_decay:  # decoupled, as optax.adamw
      opt, kw = torch.optim.AdamW, kw | {'weight_decay': weight_decay}
    self.g_opt = opt(self.g.parameters(), lr=optim.g_lr, **kw)
    self.d_opt = opt(self.d.parameters(), lr=optim.d_lr, **kw)

  def _autocast(self):
    return torch.autocast(self.device.type, torch.bfloat16, enabled=self.bf16)

  def latents(self, batch_size: int) -> torch.Tensor:
    """(d_steps + g_steps, N, latent_dim) latents for one `step`, from model.latent_dist."""
    shape = (self.d_steps + self.g_steps, batch_size, self.latent_dim)
    if self.uniform_latents:
      return torch.rand(shape, device=self.device) * 2 - 1
    return torch.randn(shape, device=self.device)

  def step(self, reals, latents) -> dict[str, torch.Tensor]:
    """d_steps D updates, the i-th on reals[i] and the detached fake G(latents[i]); then
    g_steps G updates, the first on the last D update's fake batch (G has not changed since),
    the j-th (j > 0) on G(latents[d_steps + j]). Returns the mean D loss and the last G loss.
    """
    d_losses = []
    for i in range(self.d_steps):
      if i < self.d_steps - 1:
        # Only the last fake batch is reused, so only its pass needs a graph; jaxgan keeps the
        # batch statistics of that pass alone too.
        with torch.no_grad(), _frozen_stats(self.g), self._autocast():
          fake = self.g(latents[i])
      else:
        with self._autocast():
          fake = self.g(latents[i])
      d_losses.append(self._d_update(reals[i], fake.detach()))
    for j in range(self.g_steps):
      if j > 0:
        with self._autocast():
          fake = self.g(latents[self.d_steps + j])
      g_loss = self._g_update(fake)
    return {'d_loss': torch.stack(d_losses).mean(), 'g_loss': g_loss}

  def _d_update(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    self.d_opt.zero_grad(set_to_none=True)
    with self._autocast():
      real_logits, fake_logits = self.d(real), self.d(fake)
    loss = self.d_loss(real_logits, fake_logits)
    loss.backward()
    self.d_opt.step()
    return loss.detach()

  def _g_update(self, fake: torch.Tensor) -> torch.Tensor:
    self.g_opt.zero_grad(set_to_none=True)
    # D is a constant of the G step, as in jaxgan: no gradients for its weights (work
    # jaxgan does not do either) and its batch and spectral-norm statistics left as they were.
    with _frozen_stats(self.d), _no_param_grads(self.d), self._autocast():
      logits = self.d(fake)
    loss = self.g_loss(logits)
    loss.backward()
    self.g_opt.step()
    return loss.detach()


@contextlib.contextmanager
def _frozen_stats(module: nn.Module):
  """Batch norm keeps normalising with batch statistics, but momentum 0 leaves the running
  ones as they are; spectral norm estimates sigma but does not store its vector."""
  bns = [m for m in module.modules() if isinstance(m, nn.BatchNorm2d)]
  sns = [m for m in module.modules() if isinstance(m, _SpectralNormed)]
  for m in bns:
    m.momentum = 0.0
  for m in sns:
    m.keep_stats = False
  try:
    yield
  finally:
    for m in bns:
      m.momentum = 0.1
    for m in sns:
      m.keep_stats = True


@contextlib.contextmanager
def _no_param_grads(module: nn.Module):
  params = [p for p in module.parameters() if p.requires_grad]
  for p in params:
    p.requires_grad_(False)
  try:
    yield
  finally:
    for p in params:
      p.requires_grad_(True)


def real_batches(images: torch.Tensor, num: int, batch_size: int) -> torch.Tensor:
  """`num` random batches of uint8 NHWC images as floats in [-1, 1], (num, N, C, H, W).

  Contiguous NCHW, as a PyTorch data loader gives them (what jaxgan does on device).
  """
  idx = torch.randint(0, images.shape[0], (num, batch_size), device=images.device)
  return (images[idx].float() / 127.5 - 1.0).permute(0, 1, 4, 2, 3).contiguous()


def _sync(device: torch.device) -> None:
  if device.type == 'cuda':
    torch.cuda.synchronize(device)


def time_steps(net: TorchGAN, images: torch.Tensor, batch_size: int, num_steps: int) -> float:
  """Runs `num_steps` train steps on random batches of `images`; returns seconds taken."""
  _sync(net.device)
  t0 = time.perf_counter()
  for _ in range(num_steps):
    net.step(real_batches(images, net.d_steps, batch_size), net.latents(batch_size))
  _sync(net.device)
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


def load_jaxgan_state(net: TorchGAN, state) -> None:
  """Copies a jaxgan GANState's params and statistics into `net` (NHWC/HWIO -> NCHW/OIHW)."""
  if isinstance(net.g, ResGenerator):
    for module, params, stats in (
      (net.g, state.g_params, state.g_vars.get('batch_stats', {})),
      (net.d, state.d_params, state.d_vars.get('batch_stats', {})),
    ):
      _load_resnet(module, params, stats)
    return
  _load_dcgan(net, state)


def _hwc_rows_to_chw(a: np.ndarray, start: tuple[int, int, int]) -> np.ndarray:
  """`a` with its first axis, a dense layer's outputs, reordered from flax's (h, w, c) map
  layout to torch's (c, h, w)."""
  c, h, w = start
  return a.reshape(h, w, c, *a.shape[1:]).transpose(2, 0, 1, *range(3, a.ndim + 2)).reshape(a.shape)


def _load_dcgan(net: TorchGAN, state) -> None:
  g, gs = state.g_params, state.g_vars.get('batch_stats', {})
  k = np.asarray(g['Dense_0']['kernel'])
  net.g.dense.weight.data.copy_(_t(_hwc_rows_to_chw(k.T, net.g.start)))
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


def _spectral_u(stats: dict, path: list[str]) -> np.ndarray:
  """The stored u of the layer at `path`: flax keeps it in the parent's SpectralNorm_<i>
  wrapper, under '<layer>/kernel/u'."""
  for part in path[:-1]:
    stats = stats[part]
  key = f'{path[-1]}/kernel/u'
  for name, wrapper in stats.items():
    if name.startswith('SpectralNorm') and key in wrapper:
      return np.asarray(wrapper[key])
  raise KeyError(f'no spectral-norm vector for {"/".join(path)}')


def _load_resnet(module: nn.Module, params: dict, stats: dict) -> None:
  """Copies the flax tree of a jaxgan.models.resnet G or D into its twin here, layer by path."""
  for name, m in module.named_modules():
    if not isinstance(m, nn.Conv2d | nn.Linear | nn.BatchNorm2d):
      continue
    path = name.split('.')
    p = params
    for part in path:
      p = p[part]
    if isinstance(m, nn.BatchNorm2d):
      s = stats
      for part in path:
        s = s[part]
      _load_bn(m, p, s)
      continue
    k = np.asarray(p['kernel'])
    bias = np.asarray(p['bias']) if 'bias' in p else None
    u = _spectral_u(stats, path) if isinstance(m, _SpectralNormed) else None
    if isinstance(m, nn.Linear):
      k = k.T
      if name == 'dense' and isinstance(module, ResGenerator):
        k = _hwc_rows_to_chw(k, module.start)
        bias = _hwc_rows_to_chw(bias, module.start)
        u = None if u is None else _hwc_rows_to_chw(u.T, module.start).T
    elif k.ndim == 2:  # a dense layer over the channels: a 1x1 conv here
      k = k.T[:, :, None, None]
    else:
      k = k.transpose(3, 2, 0, 1)
    m.weight.data.copy_(_t(k))
    if bias is not None:
      m.bias.data.copy_(_t(bias))
    if u is not None:
      m.u.copy_(_t(u))


# --- Worker and CLI ------------------------------------------------------------------------------


def _setup_device(device: str) -> None:
  if device.startswith('cuda'):
    if not torch.cuda.is_available():
      raise ValueError(f'--device={device}, but this torch ({torch.__version__}) sees no GPU')
    # XLA allows TF32 in float32 matmuls and convolutions on GPU by default; PyTorch only in
    # convolutions. The same arithmetic on both sides: TF32 in matmuls here too. cuDNN's
    # autotuner is XLA's conv algorithm picker's counterpart; the warm-up rounds pay for it.
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    torch.backends.cudnn.benchmark = True


def _device_name(device: torch.device) -> str:
  return torch.cuda.get_device_name(device) if device.type == 'cuda' else 'cpu'


def serve(image_shape: Sequence[int], num_images: int, device: str = 'cpu') -> None:
  """Worker for `jaxgan.bench --torch`: a config as JSON on stdin's first line, then step counts.

  Builds the net and the same synthetic uint8 images as the bench (seeded by config.seed),
  prints its versions as one JSON line (or {"error": ...} for a config it cannot mirror, and
  exits), then for each line N on stdin runs N train steps and prints the seconds they took.
  """
  import ml_collections

  config = ml_collections.ConfigDict(json.loads(sys.stdin.readline()))
  try:
    _setup_device(device)
    # StyleGAN2's and R3GAN's references are modules of their own.
    if config.model.name == 'stylegan2':
      from benchmarks import torch_stylegan2

      classes = (config.data.get('num_classes') or 10) if config.model.conditional else 0
      net = torch_stylegan2.TorchStyleGAN2(config, image_shape, config.seed, device, classes)
    elif config.model.name == 'r3gan':
      from benchmarks.torch_r3gan import R3GANStep

      net = R3GANStep(config, image_shape, seed=config.seed, device=device)
    else:
      net = TorchGAN(config, image_shape, seed=config.seed, device=device)
  except ValueError as e:
    print(json.dumps({'error': str(e)}), flush=True)
    return
  pixels = np.random.default_rng(config.seed).integers(0, 256, (num_images, *image_shape), np.uint8)
  images = torch.from_numpy(pixels).to(net.device)
  hello = {'torch': torch.__version__, 'threads': torch.get_num_threads()}
  hello |= {'device': _device_name(net.device), 'tf32': torch.backends.cuda.matmul.allow_tf32}
  print(json.dumps(hello), flush=True)
  for line in sys.stdin:
    print(time_steps(net, images, config.batch_size, int(line)), flush=True)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--batch_size', type=int, default=64)
  parser.add_argument('--steps', type=int, default=50)
  parser.add_argument('--config', default='mnist_unconditional', help='a module in configs/')
  parser.add_argument('--device', default='cpu', help='cpu, cuda or cuda:N')
  parser.add_argument('--serve', action='store_true', help='worker mode for jaxgan.bench')
  parser.add_argument('--image_shape', default='28,28,1', help='H,W,C (with --serve)')
  parser.add_argument('--num_images', type=int, default=60_000, help='(with --serve)')
  args = parser.parse_args()
  if args.serve:
    serve(tuple(int(v) for v in args.image_shape.split(',')), args.num_images, args.device)
    return
  # Standalone, from the repository root: a config by name, its dataset's image shape.
  from jaxgan import data

  config = importlib.import_module(f'jaxgan.configs.{args.config}').get_config()
  image_shape = data.image_shape(config.data)
  _setup_device(args.device)
  net = TorchGAN(config, image_shape, device=args.device)
  images = torch.randint(0, 256, (60_000, *image_shape), dtype=torch.uint8, device=net.device)
  time_steps(net, images, args.batch_size, 5)  # warm-up: allocator, oneDNN / cuDNN choices
  seconds = time_steps(net, images, args.batch_size, args.steps)
  print(
    f'{args.config} on torch {torch.__version__} ({_device_name(net.device)}, '
    f'{torch.get_num_threads()} threads): {args.steps / seconds:.2f} steps/s at batch '
    f'{args.batch_size}'
  )


if __name__ == '__main__':
  main()
