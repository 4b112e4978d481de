"""Errors a user can cause by pointing at the wrong file. One line each; the CLI shows them without traceback."""

from stylegan.compat.errors import ModelFormatError, UnsafePickleError


class OutputExistsError(FileExistsError):
    """The output file of a conversion exists and overwriting was not asked for."""


__all__ = ["ModelFormatError", "OutputExistsError", "UnsafePickleError"]
