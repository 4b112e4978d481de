"""Model files: the native safetensors format and the one loading door for every supported format."""

from stylegan.io.convert import convert_model
from stylegan.io.errors import ModelFormatError, OutputExistsError, UnsafePickleError
from stylegan.io.loader import (
    default_model_path,
    load_discriminator,
    load_generator,
    load_networks,
    sniff_format,
)
from stylegan.io.native import atomic_write, load_native, read_native_metadata, save_networks

__all__ = [
    "ModelFormatError",
    "OutputExistsError",
    "UnsafePickleError",
    "atomic_write",
    "convert_model",
    "default_model_path",
    "load_discriminator",
    "load_generator",
    "load_native",
    "load_networks",
    "read_native_metadata",
    "save_networks",
    "sniff_format",
]
