"""The zoo's `fonts` image target (benchmarks/zoo/zoo_data.py): the letters a-j in Debian's font faces, turned,
scaled and moved at random. It is the same on every run (its fingerprint is checked on load), balanced, leaves
out the fonts that do not draw Latin letters, and is not the easy centred task.

Skipped, with the reason, where Debian's font packages are absent (CI installs none: `bash
benchmarks/zoo/setup.sh` does).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conftest import zoo_modules_or_skip

URW = Path("/usr/share/fonts/opentype/urw-base35")


@pytest.fixture(scope="module")
def zoo_data():
    (module,) = zoo_modules_or_skip("zoo_data")
    if not (URW / "NimbusSans-Regular.otf").exists():
        pytest.skip(f"Debian's font packages are not installed ({' '.join(module.FONT_PACKAGES)})")
    return module


@pytest.fixture(scope="module")
def target(zoo_data):
    return zoo_data.fonts()


def test_fonts_is_balanced_and_in_range(zoo_data, target):
    images, labels = target
    faces = zoo_data.FONTS_FINGERPRINT[0]
    assert images.shape == (20 * faces, 28, 28) and labels.shape == (20 * faces,)
    assert np.bincount(labels).tolist() == [2 * faces] * 10
    assert images.min() == 0.0 and images.max() <= 1.0
    assert (images.reshape(len(images), -1).max(axis=1) > 0.3).all()  # every glyph has ink (hairlines: 0.41)
    again, _ = zoo_data.fonts()
    np.testing.assert_array_equal(images, again)


def test_a_symbol_or_dingbat_font_is_not_a_face(zoo_data):
    letters = zoo_data.FONT_LETTERS + zoo_data.FONT_LETTERS.upper()
    assert zoo_data._draws_its_own_letters(URW / "NimbusSans-Regular.otf", letters)
    assert not zoo_data._draws_its_own_letters(URW / "StandardSymbolsPS.otf", letters)  # 'a' is alpha
    assert not zoo_data._draws_its_own_letters(URW / "D050000L.otf", letters)  # dingbats


def test_the_jitter_moves_the_glyphs(zoo_data, target):
    from PIL import ImageFont

    font = ImageFont.truetype(str(URW / "NimbusSans-Regular.otf"), 64)
    centred = zoo_data._font_glyphs(font, "aA")
    # centred: MNIST's box, the longer side 20 px, the ink's bounding box in the middle
    rows = np.flatnonzero(centred[1].max(axis=1) > 0)
    assert 19 <= rows[-1] - rows[0] + 1 <= 21 and abs((rows[0] + rows[-1]) / 2 - 13.5) <= 1
    jittered = zoo_data._font_glyphs(font, "aA", np.random.default_rng(0))
    assert np.abs(jittered - centred).mean() > 0.05
    # and the target is not one where a linear model on the pixels reads every letter (98.8 % centred)
    from sklearn.linear_model import LogisticRegression

    images, labels = target
    flat = images.reshape(len(images), -1)
    rng = np.random.default_rng(0)
    test = rng.random(len(labels)) < 0.3
    accuracy = LogisticRegression(max_iter=500).fit(flat[~test], labels[~test]).score(flat[test], labels[test])
    assert 0.2 < accuracy < 0.8


def test_another_font_set_is_refused_not_used(zoo_data, monkeypatch):
    # the fine-tuned truth and the cached features were made of one set of faces: another is another target
    monkeypatch.setattr(zoo_data, "FONTS_FINGERPRINT", (133, "0" * 64))
    with pytest.raises(RuntimeError, match=r"fonts: rendered 134 faces .* are of 133 faces .*another target"):
        zoo_data.fonts()
