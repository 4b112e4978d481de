"""Network families. `stylegan2` holds StyleGAN2/ADA; presets name NVIDIA's configurations."""

from stylegan.networks.presets import PRESETS, Preset, build_configs, resolve_preset
from stylegan.networks.stylegan2 import Discriminator, DiscriminatorConfig, Generator, GeneratorConfig

__all__ = ["PRESETS", "Preset", "build_configs", "resolve_preset", "Generator", "GeneratorConfig",
           "Discriminator", "DiscriminatorConfig"]
