"""Error control for the provenance mark: a CRC-16 to tell a real payload from noise, and a rate-1/2 convolutional
code (constraint length 7, generators 171/133 octal, the textbook pair) with a soft-decision Viterbi decoder.

Bits are numpy uint8 arrays of 0/1. Soft values are floats where > 0 means "1" and the size means confidence.
"""

from __future__ import annotations

import numpy as np

CRC_BITS = 16
_CRC_POLY = 0x1021  # CRC-16/CCITT
_MEMORY = 6  # constraint length 7: the state is the last 6 input bits
_GENERATORS = (0o171, 0o133)


def crc16(bits: np.ndarray) -> np.ndarray:
    """CRC-16/CCITT (initial value 0xFFFF) of a bit string [N] -> its 16 check bits [16], most significant first."""
    reg = 0xFFFF
    for bit in bits:
        feedback = ((reg >> 15) & 1) ^ int(bit)
        reg = (reg << 1) & 0xFFFF
        if feedback:
            reg ^= _CRC_POLY
    return int_to_bits(reg, CRC_BITS)


def int_to_bits(value: int, width: int) -> np.ndarray:
    """Unsigned integer -> [width] bits, most significant first."""
    return np.array([(value >> (width - 1 - i)) & 1 for i in range(width)], dtype=np.uint8)


def bits_to_int(bits: np.ndarray) -> int:
    """[width] bits, most significant first -> unsigned integer."""
    value = 0
    for bit in bits:
        value = (value << 1) | int(bit)
    return value


def _parity(x: np.ndarray) -> np.ndarray:
    """Parity of each 7-bit register value [...] -> 0/1 [...]."""
    x = x ^ (x >> 4)
    x = x ^ (x >> 2)
    x = x ^ (x >> 1)
    return x & 1


def _trellis() -> tuple[np.ndarray, np.ndarray]:
    """Per (state, input): the two output bits [64, 2, 2] and the next state [64, 2].

    The register holds the new input in bit 6 and the previous inputs below it; the next state drops the oldest.
    """
    states = np.arange(1 << _MEMORY)[:, None]
    inputs = np.arange(2)[None, :]
    reg = (inputs << _MEMORY) | states  # [64, 2]
    outputs = np.stack([_parity(reg & g) for g in _GENERATORS], axis=-1)  # [64, 2, 2]
    return outputs.astype(np.uint8), reg >> 1


_OUTPUTS, _NEXT = _trellis()


def conv_encode(bits: np.ndarray) -> np.ndarray:
    """[N] bits -> [2 (N + 6)] coded bits; six zero tail bits bring the encoder back to state 0."""
    state, coded = 0, []
    for bit in np.concatenate([bits, np.zeros(_MEMORY, np.uint8)]):
        coded.extend(_OUTPUTS[state, int(bit)])
        state = int(_NEXT[state, int(bit)])
    return np.array(coded, dtype=np.uint8)


def viterbi_decode(soft: np.ndarray) -> np.ndarray:
    """Soft values [2 (N + 6)] -> the most likely [N] input bits (maximum correlation path ending in state 0)."""
    steps = soft.reshape(-1, 2)
    signs = _OUTPUTS.astype(np.float64) * 2 - 1  # [64, 2, 2]: coded bit 1 -> +1, 0 -> -1
    metric = np.full(1 << _MEMORY, -np.inf)
    metric[0] = 0.0
    history = []
    for pair in steps:
        gain = metric[:, None] + signs @ pair  # [64 states, 2 inputs]
        new = np.full_like(metric, -np.inf)
        origin = np.zeros(1 << _MEMORY, dtype=np.int64)
        for inp in range(2):  # each next state has two predecessors, one per oldest bit; keep the better
            better = gain[:, inp] > new[_NEXT[:, inp]]
            idx = np.nonzero(better)[0]
            order = np.argsort(gain[idx, inp])  # ascending: the larger gain is written last and wins
            targets = _NEXT[idx[order], inp]
            new[targets] = gain[idx[order], inp]
            origin[targets] = idx[order]
        metric = new
        history.append(origin)
    state, bits = 0, []
    for origin in reversed(history):
        bits.append(state >> (_MEMORY - 1))  # the input that led into `state` is its top bit
        state = int(origin[state])
    return np.array(bits[::-1][: len(steps) - _MEMORY], dtype=np.uint8)
