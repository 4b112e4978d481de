"""Model files: the native safetensors format, the one loading door for every format, the zoo and its cache."""

from stylegan.io.cache import fetch_model, model_cache_dir, resolve_model
from stylegan.io.convert import convert_model
from stylegan.io.download import Limits
from stylegan.io.errors import ModelDownloadError, ModelFormatError, OutputExistsError, UnsafePickleError
from stylegan.io.loader import (
    default_model_path,
    load_discriminator,
    load_generator,
    load_networks,
    sniff_format,
)
from stylegan.io.native import atomic_write, load_native, read_native_metadata, save_networks
from stylegan.io.zoo import MODELS, ZooEntry

__all__ = [
    "MODELS",
    "Limits",
    "ModelDownloadError",
    "ModelFormatError",
    "OutputExistsError",
    "UnsafePickleError",
    "ZooEntry",
    "atomic_write",
    "convert_model",
    "default_model_path",
    "fetch_model",
    "load_discriminator",
    "load_generator",
    "load_native",
    "load_networks",
    "model_cache_dir",
    "read_native_metadata",
    "resolve_model",
    "save_networks",
    "sniff_format",
]
