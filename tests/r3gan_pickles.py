"""R3GAN training snapshots with brownvc/R3GAN's structure, made without its code, and a PyTorch
forward of their generator written here from the paper and the snapshot's layout.

A snapshot is `pickle.dump(dict(G=..., D=..., G_ema=..., training_set_kwargs=..., cur_nimg=...,
G_opt_state=..., D_opt_state=...))` of plain torch modules (no persistence wrapper): each
pickles as its class, named by module and name, and its __dict__. The classes here carry the
official names and attribute layout (pickle names them through stand-in modules,
`fake_modules`), and their weights are random, biases and last convs included, so that every
tensor shows in the images. The optimizer states are a real torch Adam's after one step.
"""

import contextlib
import sys
import types

import numpy as np

# The official train.py's CIFAR10 preset (its G; D reverses it), and a small network.
CIFAR = dict(widths=[768] * 4, cards=[96] * 4, blocks=[2] * 4, noise=64, bf16=3)
SMALL = dict(widths=[16, 24, 24, 8], cards=[4, 6, 3, 2], blocks=[1, 2, 1, 1], noise=12, bf16=1)


def classes():
  """The module classes, built on first use (torch is imported only by tests that have it)."""
  import torch
  import torch.nn.functional as F
  from torch import nn

  def taps():  # [1, 2, 1] * [1, 1] per axis, normalised: the resampling filter
    f = np.convolve([1, 2, 1], [1, 1]).astype(np.float32)
    return torch.tensor(np.outer(f, f) / f.sum() ** 2)

  class Convolution(nn.Module):
    def __init__(self, cin, cout, k=1, groups=1):
      super().__init__()
      self.Layer = nn.Conv2d(cin, cout, k, padding=(k - 1) // 2, groups=groups, bias=False)

    def forward(self, x):
      return F.conv2d(x, self.Layer.weight, padding=self.Layer.padding, groups=self.Layer.groups)

  class BiasedActivationCUDA(nn.Module):
    def __init__(self, n):
      super().__init__()
      self.Bias = nn.Parameter(torch.empty(n))

    def forward(self, x):
      return F.leaky_relu(x + self.Bias.view(1, -1, 1, 1), 0.2)

  class ResidualBlock(nn.Module):
    def __init__(self, c, card, expansion, k):
      super().__init__()
      self.LinearLayer1 = Convolution(c, c * expansion)
      self.LinearLayer2 = Convolution(c * expansion, c * expansion, k, card)
      self.LinearLayer3 = Convolution(c * expansion, c)
      self.NonLinearity1 = BiasedActivationCUDA(c * expansion)
      self.NonLinearity2 = BiasedActivationCUDA(c * expansion)

    def forward(self, x):
      y = self.LinearLayer2(self.NonLinearity1(self.LinearLayer1(x)))
      return x + self.LinearLayer3(self.NonLinearity2(y))

  class InterpolativeUpsamplerCUDA(nn.Module):
    def __init__(self):
      super().__init__()
      self.register_buffer('Kernel', taps())

    def forward(self, x):  # zeros between the pixels, then the filter times 4
      n, c, h, w = x.shape
      up = torch.zeros(n, c, 2 * h, 2 * w)
      up[:, :, ::2, ::2] = x
      up = F.pad(up, (2, 1, 2, 1))
      kernel = (4 * self.Kernel).flip(0, 1).expand(c, 1, 4, 4)
      return F.conv2d(up, kernel, groups=c)

  class InterpolativeDownsamplerCUDA(InterpolativeUpsamplerCUDA):
    def forward(self, x):  # the filter, then every other pixel
      c = x.shape[1]
      kernel = self.Kernel.flip(0, 1).expand(c, 1, 4, 4)
      return F.conv2d(F.pad(x, (1, 1, 1, 1)), kernel, groups=c)[:, :, ::2, ::2]

  class UpsampleLayer(nn.Module):
    def __init__(self, cin, cout):
      super().__init__()
      self.Resampler = InterpolativeUpsamplerCUDA()
      if cin != cout:
        self.LinearLayer = Convolution(cin, cout)

    def forward(self, x):
      return self.Resampler(self.LinearLayer(x) if hasattr(self, 'LinearLayer') else x)

  class DownsampleLayer(nn.Module):
    def __init__(self, cin, cout):
      super().__init__()
      self.Resampler = InterpolativeDownsamplerCUDA()
      if cin != cout:
        self.LinearLayer = Convolution(cin, cout)

    def forward(self, x):
      x = self.Resampler(x)
      return self.LinearLayer(x) if hasattr(self, 'LinearLayer') else x

  class GenerativeBasis(nn.Module):
    def __init__(self, din, cout):
      super().__init__()
      self.Basis = nn.Parameter(torch.empty(cout, 4, 4))
      self.LinearLayer = nn.Linear(din, cout, bias=False)

    def forward(self, x):
      return self.Basis[None] * self.LinearLayer(x)[:, :, None, None]

  class DiscriminativeBasis(nn.Module):
    def __init__(self, cin, dout):
      super().__init__()
      self.Basis = nn.Conv2d(cin, cin, 4, groups=cin, bias=False)
      self.LinearLayer = nn.Linear(cin, dout, bias=False)

    def forward(self, x):
      return self.LinearLayer(self.Basis(x).flatten(1))

  class GeneratorStage(nn.Module):
    def __init__(self, layers, dtype):
      super().__init__()
      self.Layers = nn.ModuleList(layers)
      self.DataType = dtype

    def forward(self, x):
      for layer in self.Layers:
        x = layer(x)
      return x

  class DiscriminatorStage(GeneratorStage):
    pass

  class Model(nn.Module):  # R3GAN.Networks.Generator and .Discriminator
    def forward(self, x, y=None):
      if hasattr(self, 'AggregationLayer'):
        x = torch.cat([x, self.EmbeddingLayer(y)], 1) if hasattr(self, 'EmbeddingLayer') else x
        for stage in self.MainLayers:
          x = stage(x)
        return self.AggregationLayer(x)
      raise NotImplementedError('only G runs here')

  class Wrapper(nn.Module):  # training.networks.Generator and .Discriminator
    def forward(self, z, c):
      return self.Model(z, c)

  out = {
    'R3GAN.Networks': dict(
      Convolution=Convolution, ResidualBlock=ResidualBlock, UpsampleLayer=UpsampleLayer,
      DownsampleLayer=DownsampleLayer, GenerativeBasis=GenerativeBasis,
      DiscriminativeBasis=DiscriminativeBasis, GeneratorStage=GeneratorStage,
      DiscriminatorStage=DiscriminatorStage, Generator=type('Generator', (Model,), {}),
      Discriminator=type('Discriminator', (Model,), {}),
    ),
    'R3GAN.Resamplers': dict(
      InterpolativeUpsamplerCUDA=InterpolativeUpsamplerCUDA,
      InterpolativeDownsamplerCUDA=InterpolativeDownsamplerCUDA,
    ),
    'R3GAN.FusedOperators': dict(BiasedActivationCUDA=BiasedActivationCUDA),
    'training.networks': dict(
      Generator=type('Generator', (Wrapper,), {}),
      Discriminator=type('Discriminator', (Wrapper,), {}),
    ),
  }  # fmt: skip
  for module, members in out.items():
    for name, cls in members.items():
      cls.__module__, cls.__qualname__ = module, name
  return out


_CLASSES = {}


def _classes():
  if not _CLASSES:
    _CLASSES.update(classes())
  return _CLASSES


@contextlib.contextmanager
def fake_modules():
  """The official modules' names in sys.modules, holding the classes here, for pickle to name."""
  names = {'training', 'R3GAN', *_classes()}
  saved = {k: sys.modules.get(k) for k in names}
  for name in names:
    module = types.ModuleType(name)
    for k, v in _classes().get(name, {}).items():
      setattr(module, k, v)
    sys.modules[name] = module
  try:
    yield
  finally:
    for k, v in saved.items():
      if v is None:
        sys.modules.pop(k, None)
      else:
        sys.modules[k] = v


def generator(spec: dict, c_dim: int, expansion: int = 2, k: int = 3):
  import torch

  c = _classes()
  n = c['R3GAN.Networks']
  widths, cards, blocks = spec['widths'], spec['cards'], spec['blocks']
  dtypes = [torch.float32] * (len(widths) - spec['bf16']) + [torch.bfloat16] * spec['bf16']
  din = spec['noise'] * (2 if c_dim else 1)
  stages = []
  for i, w in enumerate(widths):
    first = n['GenerativeBasis'](din, w) if i == 0 else n['UpsampleLayer'](widths[i - 1], w)
    layers = [first] + [n['ResidualBlock'](w, cards[i], expansion, k) for _ in range(blocks[i])]
    stages.append(n['GeneratorStage'](layers, dtypes[i]))
  model = n['Generator']()
  model.MainLayers = torch.nn.ModuleList(stages)
  model.AggregationLayer = n['Convolution'](widths[-1], 3)
  if c_dim:
    model.EmbeddingLayer = torch.nn.Linear(c_dim, spec['noise'], bias=False)
  g = c['training.networks']['Generator']()
  g.Model = model
  g.z_dim, g.c_dim, g.img_resolution = spec['noise'], c_dim, 4 * 2 ** (len(widths) - 1)
  return _randomized(g)


def discriminator(spec: dict, c_dim: int, expansion: int = 2, k: int = 3):
  import torch

  c = _classes()
  n = c['R3GAN.Networks']
  widths, cards, blocks = (spec[key][::-1] for key in ('widths', 'cards', 'blocks'))
  dtypes = [torch.bfloat16] * spec['bf16'] + [torch.float32] * (len(widths) - spec['bf16'])
  stages = []
  for i, w in enumerate(widths):
    layers = [n['ResidualBlock'](w, cards[i], expansion, k) for _ in range(blocks[i])]
    if i + 1 < len(widths):
      layers.append(n['DownsampleLayer'](w, widths[i + 1]))
    else:
      layers.append(n['DiscriminativeBasis'](w, spec['widths'][0] if c_dim else 1))
    stages.append(n['DiscriminatorStage'](layers, dtypes[i]))
  model = n['Discriminator']()
  model.ExtractionLayer = n['Convolution'](3, widths[0])
  model.MainLayers = torch.nn.ModuleList(stages)
  if c_dim:
    model.EmbeddingLayer = torch.nn.Linear(c_dim, spec['widths'][0], bias=False)
  d = c['training.networks']['Discriminator']()
  d.Model = model
  return _randomized(d)


def _randomized(net, seed: int = 0):
  """Every parameter drawn at random, scaled by its fan-in, so that every one shows."""
  import torch

  gen = torch.Generator().manual_seed(seed)
  with torch.no_grad():
    for p in net.parameters():
      fan_in = p[0].numel() if p.ndim > 1 else 1
      p.copy_(torch.randn(p.shape, generator=gen) / fan_in**0.5 * (0.5 if p.ndim > 1 else 0.1))
  return net.eval().requires_grad_(False)


def adam_state(net, seed: int = 1) -> dict:
  """A torch Adam's state_dict after one step with random gradients (R3GAN's betas (0, b2))."""
  import copy

  import torch

  net = copy.deepcopy(net).requires_grad_(True)
  opt = torch.optim.Adam(net.parameters(), lr=2e-4, betas=(0.0, 0.9), eps=1e-8)
  gen = torch.Generator().manual_seed(seed)
  for _ in range(2):
    for p in net.parameters():
      p.grad = torch.randn(p.shape, generator=gen)
    opt.step()
  return opt.state_dict()


def snapshot(spec: dict, c_dim: int, cur_nimg: int, optimizer: bool = True) -> dict:
  """A training snapshot's dict (pickle it inside `fake_modules`)."""
  g, d = generator(spec, c_dim), discriminator(spec, c_dim)
  g_ema = _randomized(generator(spec, c_dim), seed=2)
  data = dict(
    G=g, D=d, G_ema=g_ema, cur_nimg=cur_nimg,
    training_set_kwargs=dict(path='/data/cifar10.zip', use_labels=bool(c_dim), xflip=True,
                             resolution=g.img_resolution),
  )  # fmt: skip
  if optimizer:
    data.update(D_opt_state=adam_state(d), G_opt_state=adam_state(g))
  return data


def generate(g, z: np.ndarray, labels: np.ndarray | None) -> np.ndarray:
  """G's images (N, H, W, C) in float32 throughout, as jaxgan computes on the CPU."""
  import torch

  c = None
  if labels is not None:
    c = torch.nn.functional.one_hot(torch.tensor(labels).long(), g.c_dim).float()
  with torch.no_grad():
    return g(torch.tensor(z), c).permute(0, 2, 3, 1).numpy()
