"""Errors a user can cause by pointing at the wrong file. One line each; the CLI shows them without traceback."""

from stylegan.compat.errors import ModelFormatError, UnsafePickleError


class ModelDownloadError(ModelFormatError):
    """A model could not be fetched (offline, refused, too big, wrong bytes); the line says where to put it."""


class OutputExistsError(FileExistsError):
    """The output file of a conversion exists and overwriting was not asked for."""


__all__ = ["ModelDownloadError", "ModelFormatError", "OutputExistsError", "UnsafePickleError"]
