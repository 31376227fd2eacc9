"""Image <-> numpy conversions: every encoding, row padding, byte order, compressed images, errors."""
import numpy as np
import pytest
from sensor_msgs.msg import CompressedImage, Image

from hand_perception.ros.image import (ENCODINGS, compressed_to_rgb, depth_to_metres, image_to_numpy,
                                       image_to_rgb, numpy_to_image, rgb_to_compressed)

RNG = np.random.default_rng(7)


def _random_pixels(encoding, height=5, width=7):
    info = ENCODINGS[encoding]
    shape = (height, width) if info.channels == 1 else (height, width, info.channels)
    if info.dtype.kind == "f":
        return RNG.uniform(0.2, 5.0, shape).astype(info.dtype)
    return RNG.integers(0, np.iinfo(info.dtype).max, shape, endpoint=True).astype(info.dtype)


def _padded_message(pixels, encoding, pad, big_endian=False):
    """Build an Image by hand with `pad` extra bytes per row and the given byte order."""
    dtype = pixels.dtype.newbyteorder(">" if big_endian else "<")
    rows = np.ascontiguousarray(pixels.astype(dtype)).reshape(pixels.shape[0], -1).view(np.uint8)
    padded = np.concatenate([rows, np.full((rows.shape[0], pad), 0xAB, np.uint8)], axis=1)
    return Image(height=pixels.shape[0], width=pixels.shape[1], encoding=encoding,
                 is_bigendian=int(big_endian), step=padded.shape[1], data=padded.tobytes())


@pytest.mark.parametrize("encoding", sorted(ENCODINGS))
def test_round_trip_is_exact(encoding):
    pixels = _random_pixels(encoding)
    msg = numpy_to_image(pixels, encoding)
    assert msg.step == pixels.shape[1] * pixels.itemsize * ENCODINGS[encoding].channels
    np.testing.assert_array_equal(image_to_numpy(msg), pixels)


@pytest.mark.parametrize("encoding", sorted(ENCODINGS))
@pytest.mark.parametrize("pad", [1, 3, 64])
@pytest.mark.parametrize("big_endian", [False, True])
def test_step_padding_and_endianness_are_honoured(encoding, pad, big_endian):
    pixels = _random_pixels(encoding)
    out = image_to_numpy(_padded_message(pixels, encoding, pad, big_endian))
    np.testing.assert_array_equal(out, pixels)
    assert out.dtype.isnative


def test_unpadded_native_read_is_zero_copy():
    msg = numpy_to_image(_random_pixels("rgb8", 48, 64), "rgb8")
    view = image_to_numpy(msg)
    assert not view.flags.writeable
    assert np.shares_memory(view, np.frombuffer(msg.data, np.uint8))


@pytest.mark.parametrize("encoding,converter", [
    ("rgb8", lambda p: p), ("bgr8", lambda p: p[:, :, ::-1]), ("rgba8", lambda p: p[:, :, :3]),
    ("bgra8", lambda p: p[:, :, 2::-1]), ("mono8", lambda p: np.repeat(p[:, :, None], 3, 2))])
def test_image_to_rgb_orders_channels(encoding, converter):
    pixels = _random_pixels(encoding)
    rgb = image_to_rgb(numpy_to_image(pixels, encoding))
    assert rgb.shape == (5, 7, 3) and rgb.dtype == np.uint8 and rgb.flags.c_contiguous
    np.testing.assert_array_equal(rgb, converter(pixels))


def test_depth_16uc1_is_millimetres_and_zero_is_a_hole():
    depth_mm = np.array([[0, 1000], [1500, 65535]], np.uint16)
    metres = depth_to_metres(numpy_to_image(depth_mm, "16UC1"))
    assert np.isnan(metres[0, 0])
    np.testing.assert_allclose(metres[~np.isnan(metres)], [1.0, 1.5, 65.535], rtol=1e-6)


def test_depth_32fc1_nan_inf_and_negative_become_holes():
    depth = np.array([[np.nan, 0.8], [np.inf, -1.0]], np.float32)
    metres = depth_to_metres(numpy_to_image(depth, "32FC1"))
    assert metres[0, 1] == pytest.approx(0.8) and np.isnan(metres).sum() == 3


@pytest.mark.parametrize("fmt", ["png", "jpeg"])
def test_compressed_round_trip(fmt):
    rgb = np.zeros((32, 48, 3), np.uint8)
    rgb[:, :16] = (255, 0, 0)
    rgb[:, 32:] = (0, 0, 255)
    decoded = compressed_to_rgb(rgb_to_compressed(rgb, fmt))
    error = np.abs(decoded.astype(int) - rgb)
    if fmt == "png":
        assert error.max() == 0
    else:  # lossy: colours right away from the block edges, small error on average
        assert error[:, 2:12].max() <= 12 and error[:, 36:].max() <= 12 and error.mean() < 4


@pytest.mark.parametrize("msg,message", [
    (Image(height=2, width=2, encoding="yuv422", step=4, data=bytes(8)), "yuv422"),
    (Image(height=0, width=2, encoding="rgb8", step=6, data=b""), "0"),
    (Image(height=2, width=2, encoding="rgb8", step=5, data=bytes(10)), "step 5"),
    (Image(height=2, width=2, encoding="rgb8", step=6, data=bytes(7)), "7 bytes"),
])
def test_bad_images_raise_value_error_naming_the_problem(msg, message):
    with pytest.raises(ValueError, match=message):
        image_to_numpy(msg)


def test_bad_compressed_images_raise():
    with pytest.raises(ValueError, match="tiff"):
        compressed_to_rgb(CompressedImage(format="tiff", data=b"abc"))
    with pytest.raises(ValueError, match="decode"):
        compressed_to_rgb(CompressedImage(format="jpeg", data=b"not a jpeg"))
    with pytest.raises(ValueError, match="32FC1"):
        depth_to_metres(numpy_to_image(_random_pixels("rgb8"), "rgb8"))


def test_numpy_to_image_rejects_mismatched_arrays():
    with pytest.raises(ValueError, match="shape"):
        numpy_to_image(np.zeros((4, 4), np.uint8), "rgb8")
    with pytest.raises(ValueError, match="dtype"):
        numpy_to_image(np.zeros((4, 4, 3), np.float32), "rgb8")
    with pytest.raises(TypeError):
        numpy_to_image([[1, 2]], "mono8")
