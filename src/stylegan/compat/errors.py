"""Errors raised by the readers of foreign model formats.

Every message is one line that names the file, so the CLI can show it as it is (click.ClickException).
"""

from __future__ import annotations


class ModelFormatError(ValueError):
    """A model file is not in the expected format, or it is truncated or corrupt.

    The message is folded to one line and cut to MAX_MESSAGE characters whatever a file put into it (a mutated
    pickle can turn a name into a large array), so the CLI can always show it as it is.
    """

    MAX_MESSAGE = 300

    def __init__(self, message: object = "") -> None:
        text = " ".join(str(message).split())
        limit = self.MAX_MESSAGE
        super().__init__(text if len(text) <= limit else text[: limit - 3] + "...")


class UnsafePickleError(ModelFormatError):
    """A pickle asks for a global (function or class) that a StyleGAN network pickle never uses."""


class IgnoredSettingWarning(UserWarning):
    """A model file carries a setting that the network it describes does not use; it is ignored."""


def one_line(exc: BaseException) -> str:
    """An exception as one short line: 'TypeError: message'."""
    text = " ".join(f"{type(exc).__name__}: {exc}".split())
    return text if len(text) <= 160 else text[:157] + "..."


def brief(value: object, limit: int = 80) -> str:
    """A value from a file, shown on one line and cut to `limit` characters."""
    return " ".join(str(value)[: 4 * limit].split())[:limit]
