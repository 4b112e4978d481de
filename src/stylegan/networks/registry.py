"""Family name -> (config classes, module classes), so a saved config always rebuilds its network."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from stylegan.networks import stylegan1, stylegan2, stylegan3


@dataclass(frozen=True)
class Family:
    generator_config: type
    generator: type[nn.Module]
    discriminator_config: type
    discriminator: type[nn.Module]


FAMILIES: dict[str, Family] = {
    "stylegan2": Family(
        stylegan2.GeneratorConfig, stylegan2.Generator, stylegan2.DiscriminatorConfig, stylegan2.Discriminator
    ),
    # StyleGAN3 trains with StyleGAN2's discriminator.
    "stylegan3": Family(
        stylegan3.GeneratorConfig, stylegan3.Generator, stylegan2.DiscriminatorConfig, stylegan2.Discriminator
    ),
    "stylegan1": Family(
        stylegan1.GeneratorConfig, stylegan1.Generator, stylegan1.DiscriminatorConfig, stylegan1.Discriminator
    ),
}


def config_from_dict(family: str, kind: str, values: dict):
    """Rebuilds a frozen config dataclass ('generator' or 'discriminator') from its to_dict() output."""
    if family not in FAMILIES:
        raise ValueError(f"unknown network family {family!r}; known: {', '.join(FAMILIES)}")
    fam = FAMILIES[family]
    cls = fam.generator_config if kind == "generator" else fam.discriminator_config
    values = {k: (tuple(v) if isinstance(v, list) else v) for k, v in values.items() if k != "family"}
    return cls(**values)


def build_network(config) -> nn.Module:
    """Instantiates the module of a generator or discriminator config."""
    fam = FAMILIES[config.family]
    if isinstance(config, fam.generator_config):
        return fam.generator(config)
    return fam.discriminator(config)


def network_kind(config) -> str:
    return "generator" if isinstance(config, FAMILIES[config.family].generator_config) else "discriminator"
