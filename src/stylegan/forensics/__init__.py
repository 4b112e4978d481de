"""Provenance of images: the invisible mark every generated image carries (mark), readable metadata (metadata).

Later parts (signed C2PA manifests, detectors for unmarked generated images) add modules here; `report` style entry
points combine them for `stylegan detect`.
"""

from stylegan.forensics.mark import DEFAULT_KEY, MIN_SIDE, MarkResult, Payload, detect, embed, model_hash_prefix
from stylegan.forensics.metadata import generation_metadata, read_metadata

__all__ = [
    "DEFAULT_KEY",
    "MIN_SIDE",
    "MarkResult",
    "Payload",
    "detect",
    "embed",
    "generation_metadata",
    "model_hash_prefix",
    "read_metadata",
]
