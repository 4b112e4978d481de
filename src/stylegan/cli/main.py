"""The `stylegan` command: a click group whose subcommands are imported only when used."""

from __future__ import annotations

import pkgutil

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
    "models": "stylegan.cli.models:models",
    "detect": "stylegan.cli.detect:detect",
    "detect-train": "stylegan.cli.detect:detect_train",
    "serve": "stylegan.cli.serve:serve",
    "project": "stylegan.cli.project:project",
    "align": "stylegan.cli.align:align",
    "edit": "stylegan.cli.edit:edit",
    "directions": "stylegan.cli.edit:directions",
    "swap": "stylegan.cli.swap:swap",
}


class LazyGroup(click.Group):
    """Resolves a subcommand from COMMANDS on first use, so `stylegan --help` and `stylegan env` stay fast."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        return None if target is None else pkgutil.resolve_name(target)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="stylegan")
def main() -> None:
    """StyleGAN toolkit: generate, mix, convert, train and measure style-based generators; align, project, edit and
    swap real faces; mark, sign and check what is generated; explore it all in a local web page."""


if __name__ == "__main__":
    main()
