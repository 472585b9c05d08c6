"""PyTorch reference of R3GAN's networks and train step (jaxgan.models.r3gan), for speed and
exactness comparisons; written from the paper (Huang et al. 2024) and jaxgan's modules.

The networks are jaxgan's, layer for layer, in NCHW: residual blocks of 1x1 conv -> bias +
leaky ReLU(0.2) -> grouped KxK conv -> bias + leaky ReLU -> 1x1 conv added to the input; [1, 2, 1]
interpolative resampling (the 4 taps [1, 3, 3, 1] / 8 per axis, upsampling as its transposed
conv times 2 per axis); the generative basis (a learned 4x4 map per channel scaled by a linear
map of z) and the discriminative basis (a 4x4 depthwise conv without padding, then linear);
class conditioning by an embedding concatenated to z in G and a projection in D; no
normalisation. Module names are the flax modules' names, so that `load_jaxgan_params` finds
each weight by its path.

The step (`R3GANStep`, `TorchGAN`'s interface) is jaxgan's train step on such a config:
`train.d_steps` D updates, each on its own real batch and a detached fake batch, then
`train.g_steps` G updates, the first on the last D update's fake batch. D's loss is the config's
(`non_saturating`, or `rpgan`: softplus(-(D(x) - D(G(z))))) plus gamma / 2 * (R1 + R2), R1 and R2
the batch mean of the per-sample |grad_x D|^2 on the real and on the fake batch, on every D
step (gamma: `train.r1_weight`, R2 on when `train.r2_weight` is). G's loss is the
non-saturating one or, for `rpgan`, softplus(-(D(G(z)) - D(x))) with D(x) a constant of G's step.
Adam with the config's betas (R3GAN's: b1 = 0). Eager PyTorch, as one would write it.
"""

import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

# Leaky ReLU(0.2)'s gain: it keeps the second moment of a unit Gaussian.
ACTIVATION_GAIN = math.sqrt(2 / (1 + 0.2**2))
# The resampling filter per axis: [1, 2, 1] convolved with the box [1, 1], summing to 1.
TAPS = torch.tensor(np.convolve([1, 2, 1], [1, 1]) / 8, dtype=torch.float32)


def _separable(x: torch.Tensor, taps: torch.Tensor, stride: int, transposed: bool) -> torch.Tensor:
  """The depthwise filter `taps` along H then W, padding 1: a stride-2 conv (downsampling) or
  its transpose (upsampling: zeros between the samples, then the filter)."""
  c = x.shape[1]
  op = F.conv_transpose2d if transposed else F.conv2d
  taps = taps.to(x.dtype)
  x = op(
    x, taps.view(1, 1, -1, 1).expand(c, 1, -1, 1), stride=(stride, 1), padding=(1, 0), groups=c
  )
  return op(
    x, taps.view(1, 1, 1, -1).expand(c, 1, 1, -1), stride=(1, stride), padding=(0, 1), groups=c
  )


def upsample(x: torch.Tensor) -> torch.Tensor:
  """(N, C, H, W) -> (N, C, 2H, 2W); times 2 per axis keeps a constant map's level."""
  return _separable(x, 2 * TAPS, 2, transposed=True)


def downsample(x: torch.Tensor) -> torch.Tensor:
  """(N, C, H, W) -> (N, C, H/2, W/2)."""
  return _separable(x, TAPS, 2, transposed=False)


def _stage_precision(x: torch.Tensor, bf16: bool):
  """jaxgan's stage dtypes: a bfloat16 stage computes in bfloat16 (float32 params cast),
  under autocast; its input is cast on entry as jaxgan casts it."""
  return x.to(torch.bfloat16 if bf16 else torch.float32), torch.autocast(
    x.device.type, torch.bfloat16, enabled=bf16
  )


def _conv1x1(cin: int, cout: int) -> nn.Conv2d:
  return nn.Conv2d(cin, cout, 1, bias=False)


def _msr_(weight: torch.Tensor, gain: float, fan_in: int) -> None:
  """N(0, gain**2 / fan_in), jaxgan's `msr_init` (zeros for gain 0)."""
  with torch.no_grad():
    weight.normal_(0.0, gain / math.sqrt(fan_in)) if gain else weight.zero_()


class BiasedActivation(nn.Module):
  def __init__(self, channels: int):
    super().__init__()
    self.bias = nn.Parameter(torch.zeros(channels))

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x + self.bias.view(1, -1, 1, 1).to(x.dtype), 0.2)


class ResidualBlock(nn.Module):
  """x + conv3(act2(conv2(act1(conv1(x))))), conv2 grouped KxK; init scaled for `num_blocks`."""

  def __init__(self, c: int, cardinality: int, expansion: int, k: int, num_blocks: int):
    super().__init__()
    hidden = c * expansion
    self.conv1 = _conv1x1(c, hidden)
    self.act1 = BiasedActivation(hidden)
    self.conv2 = nn.Conv2d(hidden, hidden, k, padding=k // 2, groups=cardinality, bias=False)
    self.act2 = BiasedActivation(hidden)
    self.conv3 = _conv1x1(hidden, c)
    gain = ACTIVATION_GAIN * num_blocks ** (-1 / 4)  # Fixup's rule for 3-layer branches
    _msr_(self.conv1.weight, gain, c)
    _msr_(self.conv2.weight, gain, k * k * hidden // cardinality)
    _msr_(self.conv3.weight, 0.0, hidden)

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    return x + self.conv3(self.act2(self.conv2(self.act1(self.conv1(x)))))


class GenerativeBasis(nn.Module):
  """z (N, D) -> (N, C, 4, 4): a learned 4x4 map per channel times a linear map of z."""

  def __init__(self, latent: int, channels: int):
    super().__init__()
    self.basis = nn.Parameter(torch.randn(channels, 4, 4))
    self.linear = nn.Linear(latent, channels, bias=False)
    _msr_(self.linear.weight, 1.0, latent)

  def forward(self, z: torch.Tensor) -> torch.Tensor:
    scale = self.linear(z)
    return self.basis[None].to(scale.dtype) * scale[:, :, None, None]


class DiscriminativeBasis(nn.Module):
  """(N, C, 4, 4) -> (N, C) by a 4x4 depthwise conv without padding; returns those features
  and their linear map to `features` outputs."""

  def __init__(self, channels: int, features: int):
    super().__init__()
    self.basis = nn.Parameter(torch.randn(channels, 1, 4, 4) / 4)  # fan-in: its 16 taps
    self.linear = nn.Linear(channels, features, bias=False)
    _msr_(self.linear.weight, 1.0, channels)

  def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    h = F.conv2d(x, self.basis, groups=x.shape[1]).flatten(1)
    return h, self.linear(h)


def _stages(module: nn.Module, widths, cards, blocks, expansion, k) -> None:
  total = sum(blocks)
  for i, (w, c, n) in enumerate(zip(widths, cards, blocks, strict=True)):
    for j in range(n):
      module.add_module(f'stage{i}_block{j}', ResidualBlock(w, c, expansion, k, total))


class Generator(nn.Module):
  """z (N, latent) [, labels (N,)] -> images (N, channels, S, S), as r3gan.Generator."""

  def __init__(
    self,
    latent_dim: int,
    widths: Sequence[int],
    cardinalities: Sequence[int],
    blocks: Sequence[int],
    expansion: int = 2,
    kernel_size: int = 3,
    channels: int = 3,
    num_classes: int = 0,
    embed_dim: int = 0,
    bf16_stages: int = 0,
  ):
    super().__init__()
    self.widths, self.blocks = tuple(widths), tuple(blocks)
    self.bf16 = [i >= len(widths) - bf16_stages for i in range(len(widths))]  # G's last
    if num_classes:
      self.embed = nn.Embedding(num_classes, embed_dim)
      nn.init.normal_(self.embed.weight, 0.0, 1 / math.sqrt(num_classes))
      latent_dim += embed_dim
    self.basis = GenerativeBasis(latent_dim, widths[0])
    for i in range(1, len(widths)):
      if widths[i] != widths[i - 1]:
        self.add_module(f'transition{i}', _conv1x1(widths[i - 1], widths[i]))
        _msr_(self.get_submodule(f'transition{i}').weight, 1.0, widths[i - 1])
    _stages(self, widths, cardinalities, blocks, expansion, kernel_size)
    self.out = _conv1x1(widths[-1], channels)
    _msr_(self.out.weight, 1.0, widths[-1])

  def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
    if hasattr(self, 'embed'):
      z = torch.cat([z, self.embed(labels)], dim=1)
    x = z
    for i in range(len(self.widths)):
      x, precision = _stage_precision(x, self.bf16[i])
      with precision:
        if i == 0:
          x = self.basis(x)
        else:
          if hasattr(self, f'transition{i}'):  # on the small map, as jaxgan
            x = getattr(self, f'transition{i}')(x)
          x = upsample(x)
        for j in range(self.blocks[i]):
          x = getattr(self, f'stage{i}_block{j}')(x)
        if i == len(self.widths) - 1:
          x = self.out(x)
    return x.float()


class Discriminator(nn.Module):
  """images (N, C, S, S) [, labels] -> logits (N,): G's stages reversed, then the basis;
  conditional, the logit is the projection on the class's embedding."""

  def __init__(
    self,
    widths: Sequence[int],  # G's order, as jaxgan's
    cardinalities: Sequence[int],
    blocks: Sequence[int],
    expansion: int = 2,
    kernel_size: int = 3,
    channels: int = 3,
    num_classes: int = 0,
    embed_dim: int = 0,
    bf16_stages: int = 0,
  ):
    super().__init__()
    widths, cards, blocks = (tuple(reversed(s)) for s in (widths, cardinalities, blocks))
    self.widths, self.blocks = widths, blocks
    self.bf16 = [i < bf16_stages for i in range(len(widths))]  # D's first
    self.extract = _conv1x1(channels, widths[0])
    _msr_(self.extract.weight, 1.0, channels)
    _stages(self, widths, cards, blocks, expansion, kernel_size)
    for i in range(len(widths) - 1):
      if widths[i] != widths[i + 1]:
        self.add_module(f'transition{i}', _conv1x1(widths[i], widths[i + 1]))
        _msr_(self.get_submodule(f'transition{i}').weight, 1.0, widths[i])
    self.basis = DiscriminativeBasis(widths[-1], embed_dim if num_classes else 1)
    if num_classes:
      self.embed = nn.Embedding(num_classes, embed_dim)
      nn.init.normal_(self.embed.weight, 0.0, 1 / math.sqrt(embed_dim * num_classes))

  def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
    for i in range(len(self.widths)):
      x, precision = _stage_precision(x, self.bf16[i])
      with precision:
        if i == 0:
          x = self.extract(x)
        for j in range(self.blocks[i]):
          x = getattr(self, f'stage{i}_block{j}')(x)
        if i + 1 < len(self.widths):
          x = downsample(x)
          if hasattr(self, f'transition{i}'):
            x = getattr(self, f'transition{i}')(x)
        else:
          _, out = self.basis(x)
    out = out.float()
    if hasattr(self, 'embed'):
      return (out * self.embed(labels)).sum(dim=1)
    return out[:, 0]


def build(model_config, image_shape: Sequence[int], num_classes: int = 0, bf16: bool = False):
  """(G, D) of an r3gan `config.model`, initialised as jaxgan initialises them; `bf16`: the
  stages `model.bf16_stages` names compute in bfloat16 (jaxgan does on GPU and TPU)."""
  m = model_config
  common = dict(
    bf16_stages=m.bf16_stages if bf16 else 0,
    widths=m.widths,
    cardinalities=m.cardinalities,
    blocks=m.blocks,
    expansion=m.expansion,
    kernel_size=m.kernel_size,
    channels=image_shape[-1],
    num_classes=num_classes,
  )
  g = Generator(m.latent_dim, embed_dim=m.g_embed_dim or m.latent_dim, **common)
  d = Discriminator(embed_dim=m.d_embed_dim or m.widths[0], **common)
  return g, d


# --- Loading jaxgan's parameters -----------------------------------------------------------------


def _t(a) -> torch.Tensor:
  return torch.from_numpy(np.array(a, dtype=np.float32))


def load_jaxgan_params(module: nn.Module, params: dict) -> None:
  """Copies a flax param tree of r3gan.Generator or .Discriminator into its twin here, by path
  (NHWC / HWIO / (in, out) -> NCHW / OIHW / (out, in))."""
  for name, p in module.named_parameters():
    *path, leaf = name.split('.')
    tree = params
    for part in path:
      tree = tree[part]
    if leaf == 'bias':
      value = tree['bias']
    elif leaf == 'basis':  # (4, 4, C) -> G's (C, 4, 4), D's depthwise (C, 1, 4, 4)
      value = np.asarray(tree['basis']).transpose(2, 0, 1).reshape(p.shape)
    elif path and path[-1] == 'embed':
      value = tree['embedding']
    elif path and path[-1] == 'conv2':  # the grouped conv: a bare kernel param of the block
      value = np.asarray(params_at(params, path[:-1])['conv2']).transpose(3, 2, 0, 1)
    else:  # flax's Linear: (in, out) -> nn.Linear's (out, in) or a 1x1 conv's (out, in, 1, 1)
      value = np.asarray(tree['kernel']).T.reshape(p.shape)
    p.data.copy_(_t(value))


def params_at(params: dict, path: Sequence[str]) -> dict:
  for part in path:
    params = params[part]
  return params


# --- The train step ------------------------------------------------------------------------------


def unmirrored(config) -> list[str]:
  """The config settings `R3GANStep` has no counterpart for, as 'key=value' strings."""
  model, train, optim = config.model, config.train, config.optim
  want = {
    'model.name': (model.name, ('r3gan',)),
    'model.conditional': (model.get('conditional', False), (False,)),
    'model.latent_classes': (model.get('latent_classes', 0), (0,)),
    'model.latent_continuous': (model.get('latent_continuous', 0), (0,)),
    'train.loss': (train.get('loss', 'non_saturating'), ('non_saturating', 'rpgan')),
    'train.augment': (train.get('augment', ''), ('',)),
    'train.r1_every': (train.get('r1_every', 1), (1,)),
    'optim.name': (optim.get('name', 'adam'), ('adam',)),
    'optim.schedule': (optim.get('schedule', 'constant'), ('constant',)),
  }
  for key in ('gp_weight', 'label_smoothing', 'ema_decay', 'mode_seeking', 'weight_decay'):
    want[f'train.{key}'] = (train.get(key, 0.0), (0, 0.0))
  return [f'{k}={v!r}' for k, (v, allowed) in want.items() if v not in allowed]


def _grad_norms(d: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
  """(D's logits at x, the batch mean of the per-sample |grad_x D(x)|^2), differentiable."""
  x = x.detach().requires_grad_(True)
  logits = d(x)
  (g,) = torch.autograd.grad(logits.sum(), x, create_graph=True)
  return logits, g.square().sum(dim=(1, 2, 3)).mean()


class R3GANStep:
  """G, D and their Adam optimizers; `step(reals, latents)` is one jaxgan train step."""

  def __init__(self, config, image_shape: Sequence[int], seed: int = 0, device: str = 'cpu'):
    problems = unmirrored(config)
    if problems:
      raise ValueError(f'the PyTorch reference does not mirror {", ".join(problems)}')
    torch.manual_seed(seed)
    model, optim, train = config.model, config.optim, config.train
    self.device = torch.device(device)
    # bfloat16 stages on GPU only, as jaxgan.models.r3gan.build has them.
    nets = build(model, image_shape, bf16=self.device.type != 'cpu')
    self.g, self.d = (net.to(self.device) for net in nets)
    self.latent_dim = model.latent_dim
    self.d_steps, self.g_steps = train.get('d_steps', 1), train.get('g_steps', 1)
    self.relativistic = train.get('loss', 'non_saturating') == 'rpgan'
    self.r1 = train.get('r1_weight', 0.0)
    self.r2 = train.get('r2_weight', 0.0)
    kw = dict(betas=(optim.b1, optim.b2), eps=optim.get('eps', 1e-8))
    self.g_opt = torch.optim.Adam(self.g.parameters(), lr=optim.g_lr, **kw)
    self.d_opt = torch.optim.Adam(self.d.parameters(), lr=optim.d_lr, **kw)

  def latents(self, batch_size: int) -> torch.Tensor:
    return torch.randn(
      (self.d_steps + self.g_steps, batch_size, self.latent_dim), device=self.device
    )

  def step(self, reals, latents) -> dict[str, torch.Tensor]:
    d_losses = []
    for i in range(self.d_steps):
      if i < self.d_steps - 1:
        with torch.no_grad():
          fake = self.g(latents[i])
      else:
        fake = self.g(latents[i])
      d_losses.append(self.d_loss(reals[i], fake.detach(), update=True))
    for j in range(self.g_steps):
      if j > 0:
        fake = self.g(latents[self.d_steps + j])
      g_loss = self.g_loss(reals[-1], fake, update=True)
    return {'d_loss': torch.stack(d_losses).mean(), 'g_loss': g_loss}

  def d_loss(self, real: torch.Tensor, fake: torch.Tensor, update: bool = False) -> torch.Tensor:
    """D's loss (and its update, if `update`): the adversarial term + gamma / 2 (R1 + R2)."""
    if update:
      self.d_opt.zero_grad(set_to_none=True)
    if self.r1:
      real_logits, r1 = _grad_norms(self.d, real)
    else:
      real_logits, r1 = self.d(real), 0.0
    if self.r2:
      fake_logits, r2 = _grad_norms(self.d, fake)
    else:
      fake_logits, r2 = self.d(fake), 0.0
    if self.relativistic:
      adv = F.softplus(-(real_logits - fake_logits)).mean()
    else:
      adv = F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()
    loss = adv + 0.5 * self.r1 * r1 + 0.5 * self.r2 * r2
    if update:
      loss.backward()
      self.d_opt.step()
    return loss.detach() if update else loss

  def g_loss(self, real: torch.Tensor, fake: torch.Tensor, update: bool = False) -> torch.Tensor:
    """G's loss (and its update): D is a constant of this step, so no gradients for its weights."""
    if update:
      self.g_opt.zero_grad(set_to_none=True)
    params = [p for p in self.d.parameters() if p.requires_grad]
    for p in params:
      p.requires_grad_(False)
    try:
      fake_logits = self.d(fake)
      if self.relativistic:
        with torch.no_grad():
          real_logits = self.d(real)
        loss = F.softplus(-(fake_logits - real_logits)).mean()
      else:
        loss = F.softplus(-fake_logits).mean()
    finally:
      for p in params:
        p.requires_grad_(True)
    if update:
      loss.backward()
      self.g_opt.step()
    return loss.detach() if update else loss


def load_jaxgan_state(net: R3GANStep, state) -> None:
  """Copies a jaxgan GANState's G and D params into `net`."""
  load_jaxgan_params(net.g, state.g_params)
  load_jaxgan_params(net.d, state.d_params)
