"""Network families: `stylegan1` (the 2019 paper) and `stylegan2` (StyleGAN2/ADA); presets name NVIDIA's configs."""

from stylegan.networks import stylegan1, stylegan2
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
]
