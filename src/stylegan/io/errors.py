"""Errors a user can cause by pointing at the wrong file. One line each; the CLI shows them without traceback."""


class ModelFormatError(ValueError):
    """The file is missing, not a model, corrupt, unsafe, or of a format we cannot read."""
