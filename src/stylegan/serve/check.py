"""The Check view: what `stylegan detect` says about an uploaded image, and its spectrum pictures.

The upload has passed `uploads.open_image` (limits, formats, complete data). Its bytes are then written to a file
the server names (a private temporary folder, `upload.<format>`, deleted at once) so that
`stylegan.forensics.report.inspect_file`, the function behind `stylegan detect`, reads it exactly as the command
would, C2PA included (c2pa-python verifies files). No name or path from the client is used.

C2PA signers are checked against the trust anchors named by STYLEGAN_TRUST_ANCHORS (PEM files, separated like
PATH), as `stylegan detect` does; the report's `c2pa.verdict` says 'valid, trusted (signer: CN=...)', 'valid,
untrusted signer (...)' or 'invalid: <code>: <why>', and the page shows it.

The pictures (log power spectrum of the high-pass residual; radial profile against the shipped spectral detector's
mean real and generated profiles, from forensics.html) are sent as PNG data URIs made by `png_bytes`, so they carry
the provenance mark like every image the server sends. The upload itself is not sent back: the page shows the
file it already has.
"""

from __future__ import annotations

import base64
import os
import tempfile
from pathlib import Path

import numpy as np
import torch

from stylegan.images import png_bytes
from stylegan.serve.uploads import UploadLimits, open_image

ANCHORS_ENV = "STYLEGAN_TRUST_ANCHORS"
SUFFIX = {"PNG": ".png", "JPEG": ".jpg", "WEBP": ".webp", "GIF": ".gif", "BMP": ".bmp", "PPM": ".pgm"}


class Checker:
    """Holds the detectors (loaded at the first check); `check` runs on a worker thread."""

    def __init__(self, limits: UploadLimits):
        self.limits = limits
        self._detectors = None
        self._anchors: tuple[str, str | None] = ("", None)  # (the variable's value, the PEM text it named)

    def detectors(self) -> list:
        if self._detectors is None:
            from stylegan.forensics.report import load_detectors

            self._detectors = load_detectors()
        return self._detectors

    def trust_anchors(self) -> str | None:
        """The PEM certificates named by STYLEGAN_TRUST_ANCHORS (None when unset), read again when it changes.

        Raises ValueError (one line) when a named file cannot be read or holds no certificate.
        """
        value = os.environ.get(ANCHORS_ENV, "")
        if value != self._anchors[0]:
            from stylegan.forensics import c2pa

            paths = [p for p in value.split(os.pathsep) if p]
            try:
                pem = c2pa.load_trust_anchors(paths) if paths and c2pa.available() else None
            except ValueError as err:
                raise ValueError(f"{ANCHORS_ENV}: {err}") from None
            self._anchors = (value, pem)
        return self._anchors[1]

    def check(self, data: bytes) -> dict:
        """{size, format, frames, mark, metadata, c2pa, detector, verdicts: [[label, text]], spectrum, profile}."""
        from stylegan.forensics.html import profile_plot, spectrum_image, verdicts
        from stylegan.forensics.report import first_frame, inspect_file

        fmt = open_image(data, self.limits).format
        anchors = self.trust_anchors()
        with tempfile.TemporaryDirectory(prefix="stylegan-check-") as folder:
            path = Path(folder) / f"upload{SUFFIX[fmt]}"
            path.write_bytes(data)
            report = inspect_file(path, detectors=self.detectors(), trust_anchors=anchors)
            if "error" in report:
                raise ValueError(f"the image cannot be checked: {report['error']}")
            pixels = first_frame(path)
        spectral = next((d for d in self.detectors() if d.kind == "spectral"), None)
        report.pop("file")
        report.update(
            format=fmt,
            verdicts=[list(v) for v in verdicts({**report, "file": "upload"})],
            spectrum=_data_uri(spectrum_image(pixels)),
            profile=_data_uri(profile_plot(pixels[:1024, :1024], spectral)),
        )
        return report


def _data_uri(pixels: np.ndarray) -> str:
    """uint8 [H, W] or [H, W, 3] -> a marked PNG as 'data:image/png;base64,...'."""
    chw = torch.from_numpy(np.array(pixels if pixels.ndim == 3 else pixels[:, :, None])).permute(2, 0, 1)
    data = png_bytes(chw, metadata={"model": "stylegan detect (plot)"}, compress_level=1)
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def check_command(fmt: str) -> str:
    return f"stylegan detect image{SUFFIX.get(fmt, '.png')}"
