"""Reference NCTI (Wang et al., CVPR 2023): the authors' ``NCTI_Score`` (BUserName/NCTI, metrics.py) through
the same scikit-learn calls, with the PCA solver fixed to an exact one ("covariance_eigh", which scikit-learn
picks for N > 10 D, D < 1000) and 64 components clipped to min(N, D)."""

from __future__ import annotations

import numpy as np
from sklearn.decomposition import PCA
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

from pedrank._engine.validation import check_classification, check_int


def ncti_terms(features, labels, *, n_components=64):
    """Reference NCTI terms ``(seli, ncc, vc)``. See :func:`pedrank.ncti_terms`."""
    n_components = check_int(n_components, name="n_components", minimum=1)
    features, y, classes = check_classification(features, labels)
    X = np.array(features, dtype=np.float64)
    C = classes.shape[0]
    pca = PCA(n_components=min(n_components, *X.shape), svd_solver="covariance_eigh")
    X = pca.fit_transform(X, y)
    temp = max(np.exp(-pca.explained_variance_[:32].sum()), 1e-10)
    if temp == 1e-10:
        clf = LinearDiscriminantAnalysis(solver="svd")
    else:
        clf = LinearDiscriminantAnalysis(solver="eigen", shrinkage=float(temp))
    low_feat = clf.fit_transform(X, y)
    low_feat = low_feat - np.mean(low_feat, axis=0, keepdims=True)
    all_lowfeat_nuc = np.linalg.norm(low_feat, ord="nuc")
    low_pred = clf.predict_proba(X)
    ncc = np.sum(low_pred[np.arange(X.shape[0]), y]) / X.shape[0]
    class_pred_nuc = 0.0
    for c in range(C):
        class_pred_nuc += np.linalg.norm(low_pred[(y == c).flatten()], ord="nuc")
    return float(all_lowfeat_nuc), float(ncc), float(np.log(class_pred_nuc))


def ncti(features, labels, *, n_components=64):
    """Reference NCTI, unnormalised. See :func:`pedrank.ncti`."""
    seli, ncc, vc = ncti_terms(features, labels, n_components=n_components)
    return float(seli + ncc - vc)
