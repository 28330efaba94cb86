"""Binary codes: ±1 codes, {0, 1} bits and packed bytes.

numpy only (no Keras, no TensorFlow): the deployment runtime imports it.

Bit order (a contract shared with the ONNX exporter, which packs in-graph the
same way, and with faiss): code dimension `8 * k + j` is bit `j` (value
`2**j`) of byte `k`, and +1 is 1, -1 is 0. That is
`np.packbits(bits, axis=-1, bitorder="little")`, the order of
`faiss.real_to_binary`. Hamming distances do not depend on the order, but
codes packed elsewhere must use the same one to be compared.

Where a function takes codes "in any form", a uint8 array is read as packed
bytes; ±1 codes come as any signed or float dtype (`MLH.encode` gives int8)
and 0/1 bits as bool or another integer dtype.
"""

import numpy as np

BIT_ORDER = "little"
MAX_BITS = 4096  # longest code length `validate_bits` accepts


def validate_bits(bits):
    """Raises a `ValueError` unless `bits` is a multiple of 8 in [8, `MAX_BITS`].

    Args:
        bits: a code length (Python or numpy integer).

    Returns:
        `bits` as a Python int.
    """
    if not is_code_length(bits):
        raise ValueError(
            "`bits` must be a positive multiple of 8 (codes are packed into "
            f"bytes), e.g. 16, 32 or 64. Received: bits={bits!r}"
        )
    if bits > MAX_BITS:
        # A model's hash layer has features x bits weights: 10**8 bits would
        # ask for tens of GiB and hang instead of failing.
        raise ValueError(
            f"`bits` must be at most {MAX_BITS}; hash codes are usually 16 to 256 "
            f"bits. Received: bits={bits!r}"
        )
    return int(bits)


def is_code_length(bits):
    """Whether `bits` is a positive multiple of 8: codes pack into whole bytes.

    The one home of that rule (`validate_bits`, `code_bits` and the export
    metadata check call it); numpy integers count, bools do not.

    Args:
        bits: any value.

    Returns:
        `True` or `False`.

    Example:
    >>> is_code_length(32), is_code_length(12)
    (True, False)
    """
    return (
        not isinstance(bits, bool)
        and isinstance(bits, (int, np.integer))
        and bits > 0
        and bits % 8 == 0
    )


def code_bits(codes, name="codes"):
    """±1 codes or {0, 1} bits as a {0, 1} uint8 array `(n, bits)`.

    Args:
        codes: array-like of ±1 values or {0, 1} values, shape `(n, bits)` or
            `(bits,)` for a single code (read as one row).
        name: how the argument is called in error messages.

    Returns:
        uint8 array `(n, bits)` of 0 and 1 (+1 -> 1, -1 -> 0).

    Raises:
        ValueError: on a non-numeric dtype, NaN, a wrong rank, a width that is
            not a positive multiple of 8, or values other than ±1 / {0, 1}.
    """
    array = np.asarray(codes)
    if array.dtype == bool:
        array = array.astype(np.uint8)
    if not (
        np.issubdtype(array.dtype, np.integer)
        or np.issubdtype(array.dtype, np.floating)
    ):
        raise ValueError(
            f"`{name}` must be numeric ±1 codes or 0/1 bits. Received: dtype={array.dtype}"
        )
    if array.ndim == 1:
        array = array[None, :]
    if array.ndim != 2:
        raise ValueError(
            f"`{name}` must have shape (num_codes, bits). Received: shape={array.shape}"
        )
    if not is_code_length(array.shape[1]):
        raise ValueError(
            "Codes must have a positive multiple of 8 bits to be packed into bytes. "
            f"Received: {array.shape[1]} bits"
        )
    if np.issubdtype(array.dtype, np.floating) and np.isnan(array).any():
        raise ValueError(f"`{name}` contains NaN; codes must be ±1 or 0/1.")
    plus_minus = np.all((array == 1) | (array == -1))
    if plus_minus:
        return (array > 0).astype(np.uint8)
    if np.all((array == 0) | (array == 1)):
        return array.astype(np.uint8)
    bad = array[(array != 1) & (array != -1) & (array != 0)]
    raise ValueError(
        f"`{name}` must contain only ±1 (or only 0/1) values; take the sign of "
        f"continuous codes first (np.where(x >= 0, 1, -1)). Received e.g. {bad.flat[0]!r}"
    )


def binarize(embedding):
    """±1 codes of continuous codes: the sign, with 0 mapped to +1.

    The rule of `MLH.encode` (the exported graph's `codes` output applies
    the same one in-graph).

    Args:
        embedding: `(n, bits)` float values, e.g. `MLH.embed`'s tanh outputs.

    Returns:
        int8 array of the same shape, values in {-1, +1}.

    Example:
    >>> binarize([[0.3, -0.2, 0.0]])
    array([[ 1, -1,  1]], dtype=int8)
    """
    return np.where(np.asarray(embedding) >= 0, 1, -1).astype(np.int8)


def pack_codes(codes):
    """Packs ±1 codes (or 0/1 bits) into bytes, `bits / 8` per code.

    Args:
        codes: `(n, bits)` ±1 or 0/1 values; `(bits,)` is one code.

    Returns:
        uint8 array `(n, bits / 8)` in the module's bit order.

    Example:
    >>> pack_codes([[1, -1, -1, -1, -1, -1, -1, -1]])
    array([[1]], dtype=uint8)
    """
    return pack_codes_named(codes, "codes")


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
    array = as_packed_bytes(packed, name="packed")
    width = array.shape[1] * 8
    bits = width if bits is None else bits
    if bits != width:
        raise ValueError(
            f"{array.shape[1]} bytes per code hold {width} bits, not {bits}. "
            "Pass the bits the codes were packed with."
        )
    unpacked = np.unpackbits(array, axis=-1, bitorder=BIT_ORDER)
    return np.where(unpacked == 1, 1, -1).astype(np.int8)


def as_packed_bytes(packed, name="packed"):
    """Checks an array of packed codes: uint8, rank 2 (rank 1 is one code)."""
    array = np.asarray(packed)
    if array.dtype != np.uint8:
        raise ValueError(
            f"Packed `{name}` must be uint8 bytes (from pack_codes). "
            f"Received: dtype={array.dtype}"
        )
    if array.ndim == 1:
        array = array[None, :]
    if array.ndim != 2 or array.shape[1] == 0:
        raise ValueError(
            f"Packed `{name}` must have shape (num_codes, bytes). "
            f"Received: shape={array.shape}"
        )
    return np.ascontiguousarray(array)


def to_packed(codes, bits=None, name="codes"):
    """Codes in any form as packed bytes: uint8 input is taken as packed.

    Args:
        codes: packed uint8 `(n, bytes)`, or ±1 / 0/1 codes of another dtype.
        bits: the code length the caller expects; `None` accepts any.
        name: how the argument is called in error messages.

    Returns:
        uint8 array `(n, bits / 8)`.

    Raises:
        ValueError: on a code length other than `bits`, or invalid codes.
    """
    array = np.asarray(codes)
    if array.dtype == np.uint8:
        packed = as_packed_bytes(array, name=name)
    else:
        packed = pack_codes_named(array, name)
    if bits is not None and packed.shape[1] * 8 != bits:
        raise ValueError(
            f"`{name}` must be {bits}-bit codes ({bits // 8} packed bytes or {bits} "
            f"±1 values per code). Received: shape={array.shape}, dtype={array.dtype}"
        )
    return packed


def pack_codes_named(codes, name):
    return np.packbits(code_bits(codes, name=name), axis=-1, bitorder=BIT_ORDER)
