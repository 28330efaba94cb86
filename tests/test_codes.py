import faiss
import numpy as np
import pytest

from keras_mlh_runtime.codes import (
    BIT_ORDER,
    binarize,
    pack_codes,
    to_packed,
    unpack_codes,
)

pytestmark = pytest.mark.backend_independent  # numpy and faiss


def _codes(n=5, bits=24, seed=0):
    rng = np.random.default_rng(seed)
    return np.where(rng.random((n, bits)) > 0.5, 1, -1).astype(np.int8)


def test_round_trip_and_width():
    codes = _codes()
    packed = pack_codes(codes)
    assert packed.dtype == np.uint8 and packed.shape == (5, 3)
    np.testing.assert_array_equal(unpack_codes(packed), codes)
    np.testing.assert_array_equal(unpack_codes(packed, bits=24), codes)


def test_bit_order_is_little_endian_like_faiss():
    assert BIT_ORDER == "little"
    code = -np.ones(16, dtype=np.int8)
    code[0] = 1  # dimension 0 -> bit 0 of byte 0
    code[9] = 1  # dimension 9 -> bit 1 of byte 1
    np.testing.assert_array_equal(pack_codes(code), [[1, 2]])
    codes = _codes(4, 32).astype(np.float32)
    out = np.zeros((4, 4), np.uint8)
    faiss.real_to_binary(codes.size, faiss.swig_ptr(codes), faiss.swig_ptr(out))
    np.testing.assert_array_equal(pack_codes(codes), out)


def test_accepts_bits_floats_bools_and_single_code():
    codes = _codes(3, 8)
    bits = (codes > 0).astype(np.int64)
    np.testing.assert_array_equal(pack_codes(bits), pack_codes(codes))
    np.testing.assert_array_equal(pack_codes(bits.astype(bool)), pack_codes(codes))
    np.testing.assert_array_equal(
        pack_codes(codes.astype(np.float32)), pack_codes(codes)
    )
    assert pack_codes(codes[0]).shape == (1, 1)


def test_to_packed_reads_uint8_as_packed():
    packed = pack_codes(_codes(2, 16))
    np.testing.assert_array_equal(to_packed(packed, 16), packed)
    np.testing.assert_array_equal(to_packed(_codes(2, 16), 16), packed)
    with pytest.raises(ValueError, match="must be 32-bit codes"):
        to_packed(packed, 32)


@pytest.mark.parametrize(
    "codes, match",
    [
        (np.ones((2, 12)), "multiple of 8"),
        (np.ones((2, 0)), "multiple of 8"),
        (np.array([[2, 1, 1, 1, 1, 1, 1, 1]]), "only ±1"),
        (np.array([[0.5] * 8]), "only ±1"),
        (np.full((1, 8), np.nan), "NaN"),
        (np.array([["a"] * 8]), "numeric"),
        (np.ones((2, 2, 8)), "shape"),
    ],
)
def test_pack_bad_input(codes, match):
    with pytest.raises(ValueError, match=match):
        pack_codes(codes)


@pytest.mark.parametrize(
    "packed, bits, match",
    [
        (np.ones((2, 2), np.int64), None, "uint8"),
        (np.ones((2, 2), np.uint8), 24, "hold 16 bits"),
        (np.ones((2, 2, 2), np.uint8), None, "shape"),
    ],
)
def test_unpack_bad_input(packed, bits, match):
    with pytest.raises(ValueError, match=match):
        unpack_codes(packed, bits)


@pytest.mark.parametrize("bits", [0, -8, 12, 8.0, True, "32", None])
def test_validate_bits_rejects(bits):
    from keras_mlh_runtime.codes import validate_bits

    with pytest.raises(ValueError, match="positive multiple of 8"):
        validate_bits(bits)


def test_validate_bits_accepts_numpy_integers():
    from keras_mlh_runtime.codes import validate_bits

    assert validate_bits(np.int64(64)) == 64 and validate_bits(16) == 16


def test_binarize_maps_zero_to_plus_one():
    codes = binarize(np.array([[0.5, -0.5, 0.0, -0.0, -1e-9]], np.float32))
    assert codes.dtype == np.int8
    np.testing.assert_array_equal(codes, [[1, -1, 1, 1, -1]])


def test_validate_bits_refuses_huge_code_lengths():
    # 8 * 10**7 bits asked for tens of GiB of hash weights and hung.
    from keras_mlh_runtime.codes import MAX_BITS, validate_bits

    assert validate_bits(MAX_BITS) == MAX_BITS
    with pytest.raises(ValueError, match=f"at most {MAX_BITS}"):
        validate_bits(80_000_000)
