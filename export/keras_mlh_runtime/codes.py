"""Binary codes: ±1 codes, {0, 1} bits and packed bytes (numpy only).

Bit order, shared with the ONNX graph and faiss (`faiss.real_to_binary`):
code dimension `8 * k + j` is bit `j` of byte `k`, +1 is 1 and -1 is 0.
Codes "in any form": uint8 is packed bytes, other dtypes ±1 or 0/1 values.
"""

import numpy as np

from keras_mlh_runtime.errors import is_int

BIT_ORDER = "little"
MAX_BITS = 4096  # longest code length `validate_bits` accepts


def validate_bits(bits):
    """A code length: a multiple of 8 in [8, `MAX_BITS`], as an int.

    Example:
    >>> validate_bits(np.int64(32))
    32
    """
    if not is_int(bits) or bits <= 0 or bits % 8:
        raise ValueError(
            "`bits` must be a positive multiple of 8 (codes are packed into "
            f"bytes), e.g. 16, 32 or 64. Received: bits={bits!r}"
        )
    if bits > MAX_BITS:
        # features x bits hash weights: 10**8 bits would hang, not fail.
        raise ValueError(
            f"`bits` must be at most {MAX_BITS}; hash codes are usually 16 to 256 "
            f"bits. Received: bits={bits!r}"
        )
    return int(bits)


def _code_bits(codes, name):
    """±1 codes or 0/1 bits, `(n, bits)` or `(bits,)`, as 0/1 uint8 `(n, bits)`."""
    array = np.asarray(codes)
    if array.dtype.kind not in "biuf":
        raise ValueError(
            f"`{name}` must be numeric ±1 codes or 0/1 bits. Received: dtype={array.dtype}"
        )
    array = array.reshape(1, -1) if array.ndim == 1 else array
    if array.ndim != 2:
        raise ValueError(
            f"`{name}` must have shape (num_codes, bits). Received: shape={array.shape}"
        )
    if array.shape[1] == 0 or array.shape[1] % 8:
        raise ValueError(
            "Codes must have a positive multiple of 8 bits to be packed into bytes. "
            f"Received: {array.shape[1]} bits"
        )
    if array.dtype.kind == "f" and np.isnan(array).any():
        raise ValueError(f"`{name}` contains NaN; codes must be ±1 or 0/1.")
    if np.all((array == 1) | (array == -1)):
        return (array > 0).astype(np.uint8)
    if np.all((array == 0) | (array == 1)):
        return array.astype(np.uint8)
    bad = array[(array != 1) & (array != -1) & (array != 0)]
    raise ValueError(
        f"`{name}` must contain only ±1 (or only 0/1) values; take the sign of "
        f"continuous codes first (np.where(x >= 0, 1, -1)). Received e.g. {bad.flat[0]!r}"
    )


def binarize(embedding):
    """±1 int8 codes of continuous ones: the sign, 0 mapped to +1 (the rule of
    `MLH.encode` and of the exported graph).

    Example:
    >>> binarize([[0.3, -0.2, 0.0]])
    array([[ 1, -1,  1]], dtype=int8)
    """
    return np.where(np.asarray(embedding) >= 0, 1, -1).astype(np.int8)


def pack_codes(codes, name="codes"):
    """Packs ±1 codes (or 0/1 bits) into bytes, `bits / 8` per code.

    Args:
        codes: `(n, bits)` ±1 or 0/1 values; `(bits,)` is one code.
        name: the argument's name, for messages.

    Returns:
        uint8 array `(n, bits / 8)` in `BIT_ORDER`.

    Example:
    >>> pack_codes([[1, -1, -1, -1, -1, -1, -1, -1]])
    array([[1]], dtype=uint8)
    """
    return np.packbits(_code_bits(codes, name), axis=-1, bitorder=BIT_ORDER)


def unpack_codes(packed, bits=None):
    """Unpacks bytes into ±1 codes.

    Args:
        packed: uint8 array `(n, bytes)` (or `(bytes,)` for one code).
        bits: code length; defaults to `8 * bytes`.

    Returns:
        int8 array `(n, bits)` of ±1.

    Example:
    >>> unpack_codes(pack_codes([[1, -1] * 4]))
    array([[ 1, -1,  1, -1,  1, -1,  1, -1]], dtype=int8)
    """
    array = _packed(packed, "packed")
    if bits is not None and bits != array.shape[1] * 8:
        raise ValueError(
            f"{array.shape[1]} bytes per code hold {array.shape[1] * 8} bits, not "
            f"{bits}. Pass the bits the codes were packed with."
        )
    unpacked = np.unpackbits(array, axis=-1, bitorder=BIT_ORDER)
    return np.where(unpacked == 1, 1, -1).astype(np.int8)


def to_packed(codes, bits=None, name="codes"):
    """Codes in any form as packed bytes; uint8 input is taken as packed.

    Args:
        codes: packed uint8 `(n, bytes)`, or ±1 / 0/1 codes of another dtype.
        bits: the code length expected; `None` accepts any.
        name: the argument's name, for messages.

    Returns:
        uint8 array `(n, bits / 8)`.

    Example:
    >>> to_packed([[1, -1, -1, -1, -1, -1, -1, -1]], bits=8)
    array([[1]], dtype=uint8)
    """
    array = np.asarray(codes)
    packed = (
        _packed(array, name) if array.dtype == np.uint8 else pack_codes(array, name)
    )
    if bits is not None and packed.shape[1] * 8 != bits:
        raise ValueError(
            f"`{name}` must be {bits}-bit codes ({bits // 8} packed bytes or {bits} "
            f"±1 values per code). Received: shape={array.shape}, dtype={array.dtype}"
        )
    return packed


def _packed(packed, name):
    """Packed codes checked: uint8 `(n, bytes)` (`(bytes,)` is one code)."""
    array = np.asarray(packed)
    if array.dtype != np.uint8:
        raise ValueError(
            f"Packed `{name}` must be uint8 bytes (from pack_codes). "
            f"Received: dtype={array.dtype}"
        )
    array = array.reshape(1, -1) if array.ndim == 1 else array
    if array.ndim != 2 or array.shape[1] == 0:
        raise ValueError(
            f"Packed `{name}` must have shape (num_codes, bytes). "
            f"Received: shape={array.shape}"
        )
    return np.ascontiguousarray(array)
