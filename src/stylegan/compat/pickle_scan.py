"""A bounded pre-scan of a pickle's opcode stream, run before the C unpickler sees the bytes.

CPython's unpickler trusts the numbers in a file: a memo index of 10**9 grows its memo array to 10**9 slots, a
frame or string length of 10**12 asks for that many bytes, and many integers with one hash value turn dict
building quadratic. `scan_pickle` walks the opcodes once (`pickletools.genops`, no objects are built) and
refuses any number that the bytes present cannot justify, so loading afterwards is bounded by the file size:

- every length (frames, strings, bytes) must fit in what is left of the stream; reads never ask for more;
- memo indices grow by at most one per PUT/MEMOIZE, so the memo never holds more slots than the file has
  opcodes; a GET must name a slot that exists;
- integers longer than 255 bytes (LONG4) are refused: no network pickle has one;
- at most `MAX_HASH_SHARERS` distinct numbers may share one hash value (only floats and integers beyond
  +-2**61 can collide).
"""

from __future__ import annotations

import pickletools
from collections import defaultdict
from typing import BinaryIO

from stylegan.compat.errors import ModelFormatError, one_line

MAX_HASH_SHARERS = 64
_SMALL_INT = (-(2**61) + 1, 2**61 - 1)
_PUTS = {"PUT", "BINPUT", "LONG_BINPUT"}
_GETS = {"GET", "BINGET", "LONG_BINGET"}
_NUMBERS = {"INT", "BININT", "BININT1", "BININT2", "LONG", "LONG1", "FLOAT", "BINFLOAT"}


class _Window:
    """Reads from f, but never past `end`: a length field that points beyond the data is an error, not a read."""

    __slots__ = ("f", "pos", "end")

    def __init__(self, f: BinaryIO, end: int):
        self.f, self.pos, self.end = f, f.tell(), end

    def read(self, n: int = -1) -> bytes:
        if n < 0 or n > self.end - self.pos:
            raise ModelFormatError(
                f"truncated or corrupt: {n} bytes wanted at offset {self.pos}, {self.end - self.pos} left"
            )
        self.pos += n
        return self.f.read(n)

    def readline(self) -> bytes:
        line = self.f.readline(self.end - self.pos)
        self.pos += len(line)
        return line

    def tell(self) -> int:
        return self.pos


class _ScanState:
    """What the scan remembers: memo slots so far and the numbers seen per hash value."""

    __slots__ = ("memo_slots", "sharers")

    def __init__(self) -> None:
        self.memo_slots = 0
        self.sharers: dict[int, set] = defaultdict(set)

    def put(self, index: int, pos: int) -> None:
        if index > self.memo_slots:
            raise ModelFormatError(f"memo index {index} at offset {pos} skips ahead of the {self.memo_slots} in use")
        self.memo_slots = max(self.memo_slots, index + 1)

    def get(self, index: int, pos: int) -> None:
        if index >= self.memo_slots:
            raise ModelFormatError(f"memo index {index} at offset {pos} was never stored")

    def number(self, value: int | float, pos: int) -> None:
        if isinstance(value, int) and _SMALL_INT[0] < value < _SMALL_INT[1]:
            return  # each of these has its own hash (value itself; -1 and -2 share one)
        same = self.sharers[hash(value)]
        same.add(value)
        if len(same) > MAX_HASH_SHARERS:
            raise ModelFormatError(f"too many numbers share one hash value (at offset {pos}): a hash-flooding file")


def _check(state: _ScanState, name: str, arg, pos: int, left: int) -> None:
    if name == "MEMOIZE":
        state.put(state.memo_slots, pos)
    elif name in _PUTS:
        state.put(arg, pos)
    elif name in _GETS:
        state.get(arg, pos)
    elif name == "FRAME" and arg > left:
        raise ModelFormatError(f"a frame of {arg} bytes at offset {pos} runs past the end ({left} bytes left)")
    elif name == "LONG4":
        raise ModelFormatError(f"an integer longer than 255 bytes at offset {pos}")
    elif name in _NUMBERS and isinstance(arg, (int, float)):
        state.number(arg, pos)


def scan_pickle(f: BinaryIO, end: int) -> int:
    """Checks one pickle from f's position to its STOP opcode, reading at most up to byte `end`.

    Args:
        f: a seekable binary file positioned at the start of the pickle.
        end: offset where the data ends (file size, or the end of an embedded blob).

    Returns:
        The offset just past the pickle's STOP opcode. f is left there; seek back before unpickling.

    Raises:
        ModelFormatError: the opcode stream is truncated, malformed, or holds a number the data cannot justify.
    """
    window, state = _Window(f, end), _ScanState()
    try:
        for opcode, arg, pos in pickletools.genops(window):
            _check(state, opcode.name, arg, pos, end - window.pos)
    except ModelFormatError:
        raise
    except (ValueError, OverflowError, UnicodeDecodeError) as exc:  # genops: unknown opcode, bad argument
        raise ModelFormatError(f"not a pickle, or corrupt ({one_line(exc)})") from None
    return window.pos
