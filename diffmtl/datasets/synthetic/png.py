# Copyright (c) diffmtl contributors. All rights reserved.
"""Minimal deterministic PNG writer and reader (stdlib ``zlib`` only).

The synthetic generator writes its own PNGs so that the same seed gives
byte-identical files whatever image library (or version) is installed.
Only what the dataset needs is supported: 8-bit grey, 8-bit RGB and 16-bit
grey, no interlacing; every row uses the "Up" filter. :func:`read_png`
reads the files written by :func:`write_png` (it decodes all five filter
types, so other simple PNGs of those formats load too).
"""
import struct
import zlib

import numpy as np

__all__ = ['encode_png', 'write_png', 'read_png']

_SIGNATURE = b'\x89PNG\r\n\x1a\n'


def _chunk(tag: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(tag + data) & 0xFFFFFFFF
    return struct.pack('>I', len(data)) + tag + data + struct.pack('>I', crc)


def encode_png(array: np.ndarray, level: int = 6) -> bytes:
    """PNG bytes of a uint8 (H, W) / (H, W, 3) or uint16 (H, W) array."""
    array = np.asarray(array)
    if array.dtype == np.uint8 and array.ndim == 2:
        depth, color = 8, 0
    elif array.dtype == np.uint8 and array.ndim == 3 and array.shape[2] == 3:
        depth, color = 8, 2
    elif array.dtype == np.uint16 and array.ndim == 2:
        depth, color = 16, 0
        array = array.astype('>u2')
    else:
        raise ValueError('encode_png supports uint8 (H, W), uint8 (H, W, 3) '
                         f'and uint16 (H, W); got {array.dtype} '
                         f'{array.shape}')
    h, w = array.shape[:2]
    rows = np.ascontiguousarray(array).reshape(h, -1).view(np.uint8)
    # Filter type 2 ("Up") on every row: the byte-wise difference to the
    # row above (modulo 256) compresses depth / normals / images better.
    diff = rows.copy()
    diff[1:] -= rows[:-1]
    raw = np.concatenate([np.full((h, 1), 2, np.uint8), diff], axis=1)
    header = struct.pack('>IIBBBBB', w, h, depth, color, 0, 0, 0)
    return (_SIGNATURE + _chunk(b'IHDR', header) +
            _chunk(b'IDAT', zlib.compress(raw.tobytes(), level)) +
            _chunk(b'IEND', b''))


def write_png(path: str, array: np.ndarray) -> None:
    """Write ``array`` (see :func:`encode_png`) to ``path``."""
    with open(path, 'wb') as f:
        f.write(encode_png(array))


def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c


def read_png(path: str) -> np.ndarray:
    """Read an 8-bit grey/RGB or 16-bit grey non-interlaced PNG.

    Returns:
        np.ndarray: uint8 (H, W) / (H, W, 3) or uint16 (H, W).
    """
    with open(path, 'rb') as f:
        data = f.read()
    if data[:8] != _SIGNATURE:
        raise ValueError(f'{path!r} is not a PNG file')
    pos, idat, header = 8, [], None
    while pos < len(data):
        length, tag = struct.unpack('>I4s', data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if tag == b'IHDR':
            header = struct.unpack('>IIBBBBB', body)
        elif tag == b'IDAT':
            idat.append(body)
        pos += 12 + length
    w, h, depth, color, _, _, interlace = header
    if interlace or (depth, color) not in ((8, 0), (8, 2), (16, 0)):
        raise ValueError(f'{path!r}: unsupported PNG (bit depth {depth}, '
                         f'colour type {color}, interlace {interlace})')
    bpp = (3 if color == 2 else 1) * depth // 8
    stride = w * bpp
    raw = np.frombuffer(zlib.decompress(b''.join(idat)), np.uint8)
    raw = raw.reshape(h, stride + 1)
    out = np.zeros((h, stride), np.uint8)
    prev = np.zeros(stride, np.int32)
    for y in range(h):
        ftype, line = raw[y, 0], raw[y, 1:].astype(np.int32)
        if ftype == 0:
            cur = line
        elif ftype == 2:
            cur = (line + prev) & 0xFF
        else:  # Sub, Average, Paeth need a running left neighbour.
            cur = np.zeros(stride, np.int32)
            for x in range(stride):
                left = cur[x - bpp] if x >= bpp else 0
                up = prev[x]
                ul = prev[x - bpp] if x >= bpp else 0
                if ftype == 1:
                    pred = left
                elif ftype == 3:
                    pred = (left + up) // 2
                elif ftype == 4:
                    pred = _paeth(left, up, ul)
                else:
                    raise ValueError(f'{path!r}: bad PNG filter {ftype}')
                cur[x] = (line[x] + pred) & 0xFF
        out[y] = cur
        prev = cur
    if depth == 16:
        return out.view('>u2').reshape(h, w).astype(np.uint16)
    return out.reshape(h, w, 3) if color == 2 else out.reshape(h, w)
