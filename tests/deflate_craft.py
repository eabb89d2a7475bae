"""Hand-written raw deflate streams for tests: one dynamic-Huffman block of literals only.

`literal_block(data, dist_lens)` lets a test choose the distance code lengths, e.g. (2,): an incomplete
distance code, which zlib (and zlib-ng) refuse and ISA-L accepts."""
from __future__ import annotations

_ORDER = [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15]


class _Bits:
    def __init__(self) -> None:
        self.acc = self.n = 0
        self.out = bytearray()

    def put(self, value: int, n: int) -> None:
        self.acc |= value << self.n
        self.n += n
        while self.n >= 8:
            self.out.append(self.acc & 255)
            self.acc >>= 8
            self.n -= 8

    def code(self, code: int, n: int) -> None:  # Huffman codes go most significant bit first
        self.put(int(format(code, f"0{n}b")[::-1], 2), n)

    def done(self) -> bytes:
        return bytes(self.out) + (bytes([self.acc]) if self.n else b"")


def _canonical(lengths: list[int]) -> dict[int, tuple[int, int]]:
    count = [0] * (max(lengths) + 1)
    for n in lengths:
        if n:
            count[n] += 1
    code, nxt = 0, [0] * (len(count) + 1)
    for bits in range(1, len(count)):
        code = (code + count[bits - 1]) << 1
        nxt[bits] = code
    out = {}
    for sym, n in enumerate(lengths):
        if n:
            out[sym] = (nxt[n], n)
            nxt[n] += 1
    return out


def literal_block(data: bytes, dist_lens: tuple[int, ...] = (1, 1)) -> bytes:
    lit = [8] * 255 + [9, 9]  # literals 0..254 in 8 bits, 255 and end-of-block in 9
    lit_codes = _canonical(lit)
    lengths = lit + list(dist_lens)
    clen = [0] * 19
    for n in set(lengths):
        clen[n] = 2
    spare = [i for i in range(19) if not clen[i]]
    while sum(1 for x in clen if x) < 4:  # a complete code-length code: four symbols of two bits
        clen[spare.pop(0)] = 2
    cl_codes = _canonical(clen)
    w = _Bits()
    w.put(1, 1)  # final block
    w.put(2, 2)  # dynamic Huffman
    w.put(len(lit) - 257, 5)
    w.put(len(dist_lens) - 1, 5)
    hclen = max(i for i, sym in enumerate(_ORDER) if clen[sym]) + 1
    w.put(hclen - 4, 4)
    for i in range(hclen):
        w.put(clen[_ORDER[i]], 3)
    for n in lengths:
        w.code(*cl_codes[n])
    for b in data:
        w.code(*lit_codes[b])
    w.code(*lit_codes[256])
    return w.done()
