"""Image input: every source kind reaches the same 3×H×W [0, 1] tensor; bad files fail clearly."""

import numpy as np
import pytest
import torch
from PIL import Image

from maskscope.core.model.view import ClassifierView
from maskscope.data.images import ImageLoadError, list_images, load_image


def test_grayscale_rgba_and_16_bit_are_converted(tmp_path):
    gray = np.full((20, 30), 128, np.uint8)
    assert torch.allclose(load_image(gray), torch.full((3, 20, 30), 128 / 255))
    rgba = np.zeros((20, 30, 4), np.uint8)  # fully transparent black → white
    rgba[:10, :, 3] = 255  # top half opaque black
    image = load_image(Image.fromarray(rgba, "RGBA"))
    assert image[:, :10].max() == 0 and image[:, 10:].min() == 1
    deep = (np.arange(20 * 30).reshape(20, 30) * 100).astype(np.uint16)
    Image.fromarray(deep).save(tmp_path / "deep.png")
    loaded = load_image(tmp_path / "deep.png")
    assert loaded.max() <= 1 and abs(float(loaded[0, -1, -1]) - deep[-1, -1] / 65535) < 1e-3


def test_exif_orientation_is_applied(tmp_path):
    array = np.zeros((20, 40, 3), np.uint8)
    array[:, :20] = 255  # left half white, landscape
    image = Image.fromarray(array)
    exif = image.getexif()
    exif[0x0112] = 6  # rotate 90° clockwise when displayed
    image.save(tmp_path / "rotated.jpg", exif=exif.tobytes())
    loaded = load_image(tmp_path / "rotated.jpg")
    assert loaded.shape == (3, 40, 20)
    assert loaded[:, :15].mean() > 0.9 and loaded[:, -15:].mean() < 0.1  # white half now on top


def test_channel_first_arrays_and_tensors():
    array = np.random.default_rng(0).random((3, 16, 24)).astype(np.float32)
    assert torch.allclose(load_image(array), torch.from_numpy(array))
    assert torch.allclose(load_image(torch.from_numpy(array)), torch.from_numpy(array))


def test_bad_sources_name_the_input(tmp_path):
    (tmp_path / "notes.jpg").write_text("not an image")
    with pytest.raises(ImageLoadError, match="notes.jpg: unreadable"):
        load_image(tmp_path / "notes.jpg")
    photo = tmp_path / "photo.jpg"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(photo)
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(photo.read_bytes()[:300])
    with pytest.raises(ImageLoadError, match="truncated.jpg"):
        load_image(truncated)
    with pytest.raises(ImageLoadError, match="missing.png: no such file"):
        load_image(tmp_path / "missing.png")
    with pytest.raises(ImageLoadError, match="NaN"):
        load_image(np.full((10, 10, 3), np.nan, np.float32))
    with pytest.raises(ImageLoadError, match="too small"):
        load_image(np.zeros((4, 4, 3), np.uint8))


def test_empty_folder_is_an_error(tmp_path):
    with pytest.raises(ImageLoadError, match="no images found"):
        list_images(tmp_path)


def test_view_crops_the_centre_and_maps_back():
    image = torch.zeros(3, 300, 400)
    image[:, 100:200, 150:250] = 1  # a centred square
    view = ClassifierView(resize=256, crop=224)
    seen = view(image)
    assert seen.shape == (3, 224, 224)
    assert seen[:, 112, 112].min() > 0.99 and seen[:, 5, 5].max() < 0.01
    back = view.to_original(seen[0], (300, 400))
    assert back.shape == (300, 400)
    assert torch.isnan(back[:, :20]).all()  # the sides the crop never saw
    assert back[150, 200] > 0.99 and back[20, 200] < 0.01
