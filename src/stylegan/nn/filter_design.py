"""Kaiser-windowed low-pass FIR filters, as used by the alias-free (StyleGAN3) generator.

A low-pass filter with cutoff f_c (Hz at sampling rate f_s) is the ideal impulse response (a sinc in 1-D, a jinc
for the radially symmetric 2-D filter) multiplied by a Kaiser window. The window's shape parameter beta comes from
Kaiser's empirical formulas for the stop-band attenuation that `numtaps` taps can reach over a transition band
of the requested width (Kaiser 1974; the same formulas as `scipy.signal.kaiser_atten` / `kaiser_beta`). The taps
are normalised to unit DC gain.
"""

from __future__ import annotations

import math

import numpy as np
import torch


def kaiser_attenuation(numtaps: int, width: float) -> float:
    """Stop-band attenuation A in dB reachable with `numtaps` taps; width is relative to Nyquist (0..1)."""
    return 2.285 * (numtaps - 1) * math.pi * width + 7.95


def kaiser_beta(attenuation: float) -> float:
    """Kaiser's window parameter beta for an attenuation A in dB."""
    if attenuation > 50:
        return 0.1102 * (attenuation - 8.7)
    if attenuation > 21:
        excess = attenuation - 21
        return 0.5842 * excess**0.4 + 0.07886 * excess
    return 0.0


def _window(numtaps: int, width: float, fs: float) -> np.ndarray:
    """Symmetric Kaiser window [numtaps] for a transition band `width` Hz wide at sampling rate fs."""
    beta = kaiser_beta(kaiser_attenuation(numtaps, width / (fs / 2)))
    return np.kaiser(numtaps, beta)


def _tap_positions(numtaps: int, fs: float) -> np.ndarray:
    """Positions of the taps in seconds (sample spacing 1 / fs), centred on zero."""
    return (np.arange(numtaps) - (numtaps - 1) / 2) / fs


def lowpass_filter(numtaps: int, cutoff: float, width: float, fs: float, radial: bool = False) -> torch.Tensor | None:
    """Kaiser-windowed low-pass filter.

    Args:
        numtaps: filter length; 1 means no filtering (returns None).
        cutoff: cutoff frequency f_c in Hz.
        width: transition band width in Hz (twice the half-width of the paper).
        fs: sampling rate in Hz.
        radial: a radially symmetric 2-D filter (jinc * separable Kaiser window) instead of a separable 1-D one.
    Returns:
        float32 [numtaps] (separable, applied along both axes) or [numtaps, numtaps] (radial), summing to 1.
    """
    if numtaps == 1:
        return None
    t = _tap_positions(numtaps, fs)
    window = _window(numtaps, width, fs)
    if radial:
        r = np.hypot(t[:, None], t[None, :])  # [numtaps, numtaps]; even numtaps never hits r = 0
        r_t = torch.from_numpy(r)
        jinc = torch.special.bessel_j1(2 * math.pi * cutoff * r_t) / (math.pi * r_t)
        taps = jinc.numpy() * np.outer(window, window)
    else:
        taps = 2 * cutoff / fs * np.sinc(2 * cutoff * t) * window  # np.sinc(x) = sin(pi x) / (pi x)
    return torch.as_tensor(taps / taps.sum(), dtype=torch.float32)
