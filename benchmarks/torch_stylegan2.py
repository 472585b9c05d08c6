"""A PyTorch reference of jaxgan's StyleGAN2 (jaxgan.models.stylegan2) and of its train step,
for speed and exactness comparisons; written from the paper (Karras et al. 2020) and jaxgan's
code, as plain PyTorch eager code in NCHW.

G: the mapping network (z and the class embedding normalised, dense layers with a 0.01
learning-rate multiplier), the synthesis network (a 4x4 constant, modulated and demodulated
3x3 convolutions, per-pixel noise with a learned strength, bias and leaky ReLU times sqrt(2),
[1, 3, 3, 1] FIR up- and downsampling, toRGB skips); D residual or 'orig', minibatch std, the
projection onto the mapped class. `load_jaxgan` copies a jaxgan G's and D's parameters
(HWIO -> OIHW; the same names), so that both compute the same function.

The step (`TorchStyleGAN2.step`): one D update (non-saturating loss; R1 as a phase of its own
on every `r1_every`-th D update, its loss times that interval), one G update on the D update's
fake batch (path length as a lazy phase of its own when on), then G's EMA. ADA's augmentation
and style mixing are not mirrored: `unmirrored` names them, and the bench compares with them
off on both sides.

`jaxgan.bench --torch` runs it through benchmarks/torch_reference.py's worker.
"""

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

SQRT2 = math.sqrt(2)
_FIR = torch.tensor([1.0, 3.0, 3.0, 1.0]) / 8


def unmirrored(config) -> list[str]:
  """The StyleGAN2 config settings this module has no counterpart for, as 'key=value'."""
  model, train = config.model, config.train
  want = {
    'model.style_mixing': (model.get('style_mixing', 0.0), (0, 0.0)),
    'model.latent_classes': (model.get('latent_classes', 0), (0,)),
    'model.latent_continuous': (model.get('latent_continuous', 0), (0,)),
    'train.augment': (train.get('augment', ''), ('',)),
    'train.loss': (train.get('loss', 'non_saturating'), ('non_saturating',)),
    'train.gp_weight': (train.get('gp_weight', 0.0), (0, 0.0)),
    'train.d_steps': (train.get('d_steps', 1), (1,)),
    'train.g_steps': (train.get('g_steps', 1), (1,)),
  }
  return [f'{k}={v!r}' for k, (v, allowed) in want.items() if v not in allowed]


# --- FIR resampling (upfirdn2d's semantics on NCHW) ---------------------------------------------


def upfirdn2d(x, up=1, down=1, pad=(0, 0), gain=1.0):
  """Zeros inserted (up), padded, convolved with outer(f, f) * gain, every down-th kept."""
  n, c, h, w = x.shape
  if up > 1:
    z = x.new_zeros(n, c, h * up, w * up)
    z[:, :, ::up, ::up] = x
    x = z
  x = F.pad(x, (pad[0], pad[1], pad[0], pad[1]))
  f = _FIR.to(x.device, x.dtype)
  k = (torch.outer(f, f) * gain).flip(0, 1)[None, None].repeat(c, 1, 1, 1)
  return F.conv2d(x, k, groups=c)[:, :, ::down, ::down]


def upsample2d(x):
  return upfirdn2d(x, up=2, pad=(2, 1), gain=4)


def conv_up(x, w):
  """Twice the size: a transposed convolution (w: jaxgan's (k, k, in, out) as a convolution),
  then the filter; equal to upfirdn2d(up=2, pad=(3, 2), gain=4) then convolving with w."""
  y = F.conv_transpose2d(x, w.permute(2, 3, 0, 1), stride=2)
  return upfirdn2d(y, pad=(1, 1), gain=4)


def conv_down(x, w):
  """Half the size: the filter, then the stride-2 correlation with w (OIHW)."""
  if w.shape[-1] == 1:
    return F.conv2d(upfirdn2d(x, down=2, pad=(1, 1)), w)
  return F.conv2d(upfirdn2d(x, pad=(2, 2)), w, stride=2)


def bias_act(x, b, act=True, gain=1.0, clamp=None):
  x = x + b.reshape(1, -1, *[1] * (x.ndim - 2))
  if act:
    x = F.leaky_relu(x, 0.2)
    gain *= SQRT2
  if gain != 1:
    x = x * gain
  return x if clamp is None else x.clamp(-clamp, clamp)


# --- layers -------------------------------------------------------------------------------------


class Dense(nn.Module):
  """Equalized lr: weight N(0, 1) / m scaled by m / sqrt(fan_in), bias by m."""

  def __init__(self, cin, cout, act=False, lr_mult=1.0, bias_init=0.0):
    super().__init__()
    self.weight = nn.Parameter(torch.randn(cout, cin) / lr_mult)
    self.bias = nn.Parameter(torch.full((cout,), float(bias_init)))
    self.act, self.m = act, lr_mult

  def forward(self, x):
    y = x @ (self.weight * (self.m / math.sqrt(self.weight.shape[1]))).t()
    return bias_act(y, self.bias * self.m, self.act)


class Conv(nn.Module):
  """D's convolution: equalized lr, optional FIR downsampling, bias, leaky ReLU, gain, clamp."""

  def __init__(self, cin, cout, k=3, bias=True, act=True, down=False, clamp=None):
    super().__init__()
    self.weight = nn.Parameter(torch.randn(cout, cin, k, k))
    self.bias = nn.Parameter(torch.zeros(cout)) if bias else None
    self.act, self.down, self.clamp = act, down, clamp

  def forward(self, x, gain=1.0):
    w = self.weight * (1 / math.sqrt(self.weight[0].numel()))
    k = w.shape[-1]
    x = conv_down(x, w) if self.down else F.conv2d(x, w, padding=k // 2)
    b = self.bias if self.bias is not None else x.new_zeros(x.shape[1])
    clamp = None if self.clamp is None else self.clamp * gain
    return bias_act(x, b, self.act, gain, clamp)


def modulated_conv(x, weight, styles, up=False, demodulate=True):
  """weight (out, in, k, k) modulated by styles (N, in): x * styles, one shared convolution,
  times the demodulation coefficients (the same products as per-image kernels)."""
  x = x * styles[:, :, None, None]
  if up:
    x = conv_up(x, weight.permute(2, 3, 1, 0))
  else:
    x = F.conv2d(x, weight, padding=weight.shape[-1] // 2)
  if demodulate:
    energy = styles.square() @ weight.square().sum(dim=(2, 3)).t()
    x = x * torch.rsqrt(energy + 1e-8)[:, :, None, None]
  return x


class SynthesisLayer(nn.Module):
  def __init__(self, w_dim, cin, cout, side, up=False, clamp=None):
    super().__init__()
    self.affine = Dense(w_dim, cin, bias_init=1.0)
    self.weight = nn.Parameter(torch.randn(cout, cin, 3, 3))
    self.noise_strength = nn.Parameter(torch.zeros(()))
    self.register_buffer('noise_const', torch.randn(side, side))
    self.bias = nn.Parameter(torch.zeros(cout))
    self.up, self.clamp, self.side = up, clamp, side

  def forward(self, x, w, noise_mode='random'):
    x = modulated_conv(x, self.weight, self.affine(w), self.up)
    if noise_mode == 'random':
      x = (
        x + torch.randn(x.shape[0], 1, self.side, self.side, device=x.device) * self.noise_strength
      )
    elif noise_mode == 'const':
      x = x + self.noise_const * self.noise_strength
    return bias_act(x, self.bias, clamp=self.clamp)


class ToRGB(nn.Module):
  def __init__(self, w_dim, cin, cout, clamp=None):
    super().__init__()
    self.affine = Dense(w_dim, cin, bias_init=1.0)
    self.weight = nn.Parameter(torch.randn(cout, cin, 1, 1))
    self.bias = nn.Parameter(torch.zeros(cout))
    self.clamp = clamp

  def forward(self, x, w):
    styles = self.affine(w) * (1 / math.sqrt(self.weight.shape[1]))
    x = modulated_conv(x, self.weight, styles, demodulate=False)
    return bias_act(x, self.bias, act=False, clamp=self.clamp)


def _normalize(x, eps=1e-8):
  return x * torch.rsqrt(x.square().mean(dim=-1, keepdim=True) + eps)


class Mapping(nn.Module):
  def __init__(self, z_dim, w_dim, num_classes, num_layers, lr_mult):
    super().__init__()
    self.embed = Dense(num_classes, w_dim) if num_classes else None
    cin = z_dim + (w_dim if num_classes else 0)
    self.num_classes = num_classes
    self.fcs = nn.ModuleList(
      Dense(cin if i == 0 else w_dim, w_dim, act=True, lr_mult=lr_mult) for i in range(num_layers)
    )

  def forward(self, z, labels=None):
    parts = [] if z is None else [_normalize(z)]
    if self.num_classes:
      parts.append(_normalize(self.embed(F.one_hot(labels.long(), self.num_classes).float())))
    x = torch.cat(parts, dim=1)
    for fc in self.fcs:
      x = fc(x)
    return x


def _width(side, m):
  return min(m.channel_base // side, m.channel_max)


class Generator(nn.Module):
  def __init__(self, m, image_shape, num_classes):
    super().__init__()
    res, self.img_channels = image_shape[0], image_shape[2]
    clamp = m.conv_clamp or None
    self.num_ws = 2 * int(np.log2(res)) - 2
    self.z_dim = m.latent_dim
    self.mapping = Mapping(m.latent_dim, m.w_dim, num_classes, m.mapping_layers, m.mapping_lr)
    self.blocks = nn.ModuleList()
    self.sides = [4 << i for i in range(int(np.log2(res)) - 1)]
    for side in self.sides:
      c, block = _width(side, m), nn.Module()
      if side == 4:
        block.const = nn.Parameter(torch.randn(c, 4, 4))
      else:
        block.conv0 = SynthesisLayer(m.w_dim, _width(side // 2, m), c, side, True, clamp)
      block.conv1 = SynthesisLayer(m.w_dim, c, c, side, False, clamp)
      block.torgb = ToRGB(m.w_dim, c, self.img_channels, clamp)
      self.blocks.append(block)

  def synthesize(self, ws, noise_mode='random'):
    x = img = None
    for i, block in enumerate(self.blocks):
      j = max(2 * i - 1, 0)
      if x is None:
        x = block.const[None].expand(ws.shape[0], -1, -1, -1)
      else:
        x = block.conv0(x, ws[:, j], noise_mode)
        j += 1
      x = block.conv1(x, ws[:, j], noise_mode)
      y = block.torgb(x, ws[:, j + 1])
      img = y if img is None else upsample2d(img) + y
    return img

  def forward(self, z, labels=None, noise_mode='random'):
    w = self.mapping(z, labels)
    return self.synthesize(w[:, None].expand(-1, self.num_ws, -1), noise_mode)


def minibatch_std(x, group, num_channels):
  n, c, h, w = x.shape
  g = max(d for d in range(1, min(group, n) + 1) if n % d == 0)
  f = num_channels
  y = x.reshape(g, n // g, f, c // f, h, w)
  std = torch.sqrt(y.var(dim=0, unbiased=False) + 1e-8).mean(dim=(2, 3, 4))  # (n / g, f)
  std = std.repeat(g, 1)[:, :, None, None].expand(n, f, h, w)
  return torch.cat([x, std], dim=1)


class Discriminator(nn.Module):
  def __init__(self, m, image_shape, num_classes):
    super().__init__()
    res, clamp = image_shape[0], m.conv_clamp or None
    self.resnet = m.d_architecture == 'resnet'
    self.blocks = nn.ModuleList()
    side = res
    while side > 4:
      c, out, block = _width(side, m), _width(side // 2, m), nn.Module()
      if side == res:
        block.fromrgb = Conv(image_shape[2], c, 1, clamp=clamp)
      block.conv0 = Conv(c, c, clamp=clamp)
      block.conv1 = Conv(c, out, down=True, clamp=clamp)
      if self.resnet:
        block.skip = Conv(c, out, 1, bias=False, act=False, down=True)
      self.blocks.append(block)
      side //= 2
    c4 = _width(4, m)
    self.cmap_dim = c4 if num_classes else 0
    self.mapping = (
      Mapping(0, c4, num_classes, m.d_mapping_layers, m.mapping_lr) if num_classes else None
    )
    self.mbstd = (m.mbstd_group, m.mbstd_channels)
    self.conv = Conv(c4 + m.mbstd_channels, c4, clamp=clamp)
    self.fc = Dense(c4 * 16, c4, act=True)
    self.out = Dense(c4, self.cmap_dim or 1)

  def forward(self, x, labels=None):
    gain = math.sqrt(0.5) if self.resnet else 1.0
    for block in self.blocks:
      if hasattr(block, 'fromrgb'):
        x = block.fromrgb(x)
      y = block.conv1(block.conv0(x), gain)
      x = block.skip(x, gain) + y if self.resnet else y
    if self.mbstd[1]:
      x = minibatch_std(x, *self.mbstd)
    x = self.conv(x)
    out = self.out(self.fc(x.permute(0, 2, 3, 1).reshape(x.shape[0], -1)))  # NHWC order
    if self.mapping is None:
      return out[:, 0]
    return (out * self.mapping(None, labels)).sum(dim=1) / math.sqrt(self.cmap_dim)


# --- loading jaxgan's parameters ----------------------------------------------------------------


def _t(a):
  return torch.from_numpy(np.array(a, dtype=np.float32))


def _dense(mod, p):
  mod.weight.data.copy_(_t(p['kernel']).t())
  mod.bias.data.copy_(_t(p['bias']))


def _conv(mod, p):
  mod.weight.data.copy_(_t(p['kernel']).permute(3, 2, 0, 1))
  if 'bias' in p:
    mod.bias.data.copy_(_t(p['bias']))


def _mapping(mod, p):
  if mod.embed is not None:
    _dense(mod.embed, p['embed'])
  for i, fc in enumerate(mod.fcs):
    _dense(fc, p[f'fc{i}'])


def load_jaxgan(g, d, g_params, d_params, g_buffers=None):
  """Copies a jaxgan StyleGAN2 G's and D's params (and G's noise buffers) into g and d."""
  _mapping(g.mapping, g_params['mapping'])
  syn = g_params['synthesis']
  for side, block in zip(g.sides, g.blocks, strict=True):
    p = syn[f'b{side}']
    if side == 4:
      block.const.data.copy_(_t(p['const']).permute(2, 0, 1))
    for name in ('conv0', 'conv1', 'torgb'):
      if name not in p:
        continue
      layer = getattr(block, name)
      _conv(layer, p[name])
      _dense(layer.affine, p[name]['affine'])
      if name != 'torgb':
        layer.noise_strength.data.copy_(_t(p[name]['noise_strength']))
        if g_buffers is not None:
          noise = g_buffers['synthesis'][f'b{side}'][name]['noise_const']
          layer.noise_const.copy_(_t(noise))
  side = 2 ** len(d.blocks) * 4
  for block in d.blocks:
    p = d_params[f'b{side}']
    for name in ('fromrgb', 'conv0', 'conv1', 'skip'):
      if hasattr(block, name):
        _conv(getattr(block, name), p[name])
    side //= 2
  if d.mapping is not None:
    _mapping(d.mapping, d_params['mapping'])
  e = d_params['b4']
  _conv(d.conv, e['conv'])
  _dense(d.fc, e['fc'])
  _dense(d.out, e['out'])


# --- the train step -----------------------------------------------------------------------------


def _softplus_mean(x):
  return F.softplus(x).mean()


class TorchStyleGAN2:
  """G, D, G's EMA and their Adam optimizers; `step(reals, latents)` is jaxgan's train step for
  a StyleGAN2 config (see the module's docstring), lazy phases on their intervals."""

  def __init__(self, config, image_shape, seed=0, device='cpu', num_classes=0):
    problems = unmirrored(config)
    if problems:
      raise ValueError(f'the PyTorch reference does not mirror {", ".join(problems)}')
    torch.manual_seed(seed)
    m, optim, train = config.model, config.optim, config.train
    self.device = torch.device(device)
    self.num_classes = num_classes
    self.g = Generator(m, image_shape, num_classes).to(self.device)
    self.d = Discriminator(m, image_shape, num_classes).to(self.device)
    self.g_ema = Generator(m, image_shape, num_classes).to(self.device).requires_grad_(False)
    self.g_ema.load_state_dict(self.g.state_dict())
    self.latent_dim = m.latent_dim
    self.r1_gamma, self.r1_every = train.get('r1_weight', 0.0), train.get('r1_every', 1)
    penalties = [p for p in train.get('penalties', '').split(',') if p.strip()]
    self.pl_weight = m.pl_weight if 'path_length' in penalties else 0.0
    self.pl_mean = torch.zeros((), device=self.device)
    g_every, d_every = optim.get('reg_intervals', (1, 1)) or (1, 1)
    opts = []
    for net, lr, every in ((self.g, optim.g_lr, g_every), (self.d, optim.d_lr, d_every)):
      c = every / (every + 1)  # the lazy-regularisation correction of lr and betas
      betas = (optim.b1**c, optim.b2**c)
      opts.append(torch.optim.Adam(net.parameters(), lr=lr * c, betas=betas, eps=1e-8))
    self.g_opt, self.d_opt = opts
    self.ema_beta = 0.999
    self.d_updates = self.g_updates = 0
    self.d_steps = 1  # real batches a step takes (torch_reference.time_steps)
    self.bf16 = self.device.type != 'cpu' and m.get('num_fp16_res', 0) > 0

  def latents(self, batch_size):
    return torch.randn(2, batch_size, self.latent_dim, device=self.device)

  def labels(self, batch_size):
    if not self.num_classes:
      return None
    return torch.randint(0, self.num_classes, (batch_size,), device=self.device)

  def _update(self, opt, loss):
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()

  def step(self, reals, latents):
    # jaxgan computes its top resolutions in bfloat16 off-CPU (num_fp16_res): autocast here.
    with torch.autocast(self.device.type, torch.bfloat16, enabled=self.bf16):
      return self._step(reals, latents)

  def _step(self, reals, latents):
    real, n = reals[0], reals.shape[1]
    real_c, fake_c = self.labels(n), self.labels(n)
    fake = self.g(latents[0], fake_c)
    loss = _softplus_mean(-self.d(real, real_c)) + _softplus_mean(self.d(fake.detach(), fake_c))
    self._update(self.d_opt, loss)
    if self.r1_gamma and self.d_updates % self.r1_every == 0:
      x = real.detach().requires_grad_(True)
      (grad,) = torch.autograd.grad(self.d(x, real_c).sum(), x, create_graph=True)
      r1 = grad.square().sum(dim=(1, 2, 3)).mean()
      self._update(self.d_opt, self.r1_every * 0.5 * self.r1_gamma * r1)
    self.d_updates += 1
    self.d.requires_grad_(False)
    g_loss = _softplus_mean(-self.d(fake, fake_c))
    self._update(self.g_opt, g_loss)
    if self.pl_weight and self.g_updates % 4 == 0:
      self._update(self.g_opt, 4 * self.pl_weight * self.path_length(latents[1], fake_c))
    self.d.requires_grad_(True)
    self.g_updates += 1
    with torch.no_grad():
      for p_ema, p in zip(self.g_ema.parameters(), self.g.parameters(), strict=True):
        p_ema.lerp_(p, 1 - self.ema_beta)
    return {'d_loss': loss.detach(), 'g_loss': g_loss.detach()}

  def path_length(self, z, labels):
    """(|J_w^T y| - a)^2 on half the batch, y images-shaped noise / sqrt(H W)."""
    n = max(z.shape[0] // 2, 1)
    w = self.g.mapping(z[:n], None if labels is None else labels[:n])
    ws = w[:, None].expand(-1, self.g.num_ws, -1)
    img = self.g.synthesize(ws)
    y = torch.randn_like(img) / math.sqrt(img.shape[2] * img.shape[3])
    (grads,) = torch.autograd.grad((img * y).sum(), ws, create_graph=True)
    lengths = grads.square().sum(dim=2).mean(dim=1).sqrt()
    self.pl_mean = (self.pl_mean + 0.01 * (lengths.mean() - self.pl_mean)).detach()
    return (lengths - self.pl_mean).square().mean()
