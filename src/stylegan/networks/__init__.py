"""Network families: `stylegan1` (the 2019 paper), `stylegan2` (StyleGAN2/ADA) and `stylegan3` (alias-free T and R
generators); presets name NVIDIA's configs."""

from stylegan.networks import stylegan1, stylegan2, stylegan3
from stylegan.networks.presets import PRESETS, Preset, build_configs, resolve_preset
from stylegan.networks.stylegan2 import Discriminator, DiscriminatorConfig, Generator, GeneratorConfig

__all__ = [
    "PRESETS",
    "Preset",
    "build_configs",
    "resolve_preset",
    "Generator",
    "GeneratorConfig",
    "Discriminator",
    "DiscriminatorConfig",
    "stylegan1",
    "stylegan2",
    "stylegan3",
]
