"""Errors a user can cause by pointing at the wrong file. One line each; the CLI shows them without traceback."""

from stylegan.compat.errors import ModelFormatError, UnsafePickleError

__all__ = ["ModelFormatError", "UnsafePickleError"]
