"""The `stylegan` command: a click group whose subcommands are imported only when used."""

from __future__ import annotations

import importlib

import click

# name -> "module:attribute". Each module holds one thin click command over a library function.
COMMANDS = {
    "generate": "stylegan.cli.generate:generate",
    "mix": "stylegan.cli.generate:mix",
    "convert": "stylegan.cli.convert:convert",
    "env": "stylegan.cli.env:env",
    "figure": "stylegan.cli.figures:figure",
    "train": "stylegan.cli.train:train",
    "dataset": "stylegan.cli.dataset:dataset",
    "metrics": "stylegan.cli.metrics:metrics",
}


class LazyGroup(click.Group):
    """Imports a subcommand's module on first use, so `stylegan --help` stays fast."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(name for name in COMMANDS if self._load(name) is not None)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return self._load(cmd_name)

    @staticmethod
    def _load(name: str) -> click.Command | None:
        target = COMMANDS.get(name)
        if target is None:
            return None
        module_name, attr = target.split(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as err:
            if err.name == module_name:  # command not built yet
                return None
            raise
        return getattr(module, attr, None)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="stylegan")
def main() -> None:
    """StyleGAN toolkit: generate, mix, convert, train and measure style-based generators."""


if __name__ == "__main__":
    main()
