"""Reference LEAD (Hu et al., CVPR 2024), written from the closed form of the NTK ODE (docs/lead.md).

Plain and slow on purpose: each class's NTK is built as a full n x n matrix, entry by entry from the gradients'
inner products, and its eigenvalues come from ``eigvalsh``; the least-squares head is solved in the primal; the
cross-entropy is a loop over samples. The logistic classifier is scikit-learn's, as in the fast path.
"""

from __future__ import annotations

import numpy as np

from pedrank._engine.validation import check_classification, to_numpy
from pedrank.scores.lead import check_lead_options


def standardise(x):
    """Columns to mean 0, variance 1 (population); a column constant to rounding is only centred."""
    out = np.empty_like(x)
    for j in range(x.shape[1]):
        column = x[:, j]
        centred = column - column.mean()
        sd = centred.std()
        if sd > 1e-12 * np.abs(column).max():
            out[:, j] = centred / sd
        else:
            out[:, j] = centred
    return out


def _initial_logits(z, y, n_classes, classifier, C, random_state):
    n = z.shape[0]
    if classifier == "logistic":
        from sklearn.linear_model import LogisticRegression

        model = LogisticRegression(C=C, tol=1e-4, max_iter=1000, random_state=random_state).fit(z, y)
        return model.predict_proba(z)
    # ridge regression with an (unpenalised) intercept on one-hot targets: append a column of ones
    onehot = np.eye(n_classes)[y]
    design = np.hstack([z, np.ones((n, 1))])
    penalty = np.eye(design.shape[1]) / C
    penalty[-1, -1] = 0.0
    coefficients = np.linalg.solve(design.T @ design + penalty, design.T @ onehot)
    return design @ coefficients


def _relu(v):
    return np.maximum(v, 0.0)


def _gradient_parts(x, layers, output):
    """For one sample: (inputs of each weight matrix, back-propagated vectors at its output, gains)."""
    n_classes = output.shape[1]
    a = [x]
    pre = []
    for w in layers:
        h = np.sqrt(2.0 / w.shape[0]) * (a[-1] @ w)
        pre.append(h)
        a.append(_relu(h))
    # g(x) = sum_j F_j(x) / sqrt(C), F = a_L @ output / sqrt(m_L)
    m_last = output.shape[0]
    parts = [(a[-1] / np.sqrt(m_last), np.ones(n_classes) / np.sqrt(n_classes))]  # dg/dW_out = outer(these)
    back = output @ np.ones(n_classes) / np.sqrt(m_last * n_classes)  # dg/da_L
    for index in reversed(range(len(layers))):
        w = layers[index]
        gain = np.sqrt(2.0 / w.shape[0])
        delta = back * (pre[index] > 0)  # dg/dh_l
        parts.append((gain * a[index], delta))  # dg/dW_l = outer(gain a_{l-1}, delta)
        back = gain * (w @ delta)
    return parts


def _ntk(rows, layers, output):
    """Theta[u, v] = <dg/dtheta (x_u), dg/dtheta (x_v)> / (L + 1): the sum over the L + 1 weight matrices of
    <outer(p, q), outer(p', q')>, divided by their number."""
    parts = [_gradient_parts(x, layers, output) for x in rows]
    n = len(rows)
    kernel = np.zeros((n, n))
    for u in range(n):
        for v in range(n):
            kernel[u, v] = sum((p @ p2) * (q @ q2) for (p, q), (p2, q2) in zip(parts[u], parts[v]))
    return kernel / (len(layers) + 1)  # the mean of the weight layers' kernels


def lead(features, labels, *, t=1.0, eta=1.0, n_per_class=64, hidden=(1024, 2048), classifier="logistic", C=1.0,
         random_state=0):
    """Reference LEAD. See :func:`pedrank.lead`."""
    t, eta, n_per_class, hidden, classifier, C, random_state = check_lead_options(
        t, eta, n_per_class, hidden, classifier, C, random_state)
    features, y, classes = check_classification(features, labels)
    z = standardise(np.array(to_numpy(features), dtype=np.float64))
    n, d = z.shape
    k = classes.shape[0]
    start = _initial_logits(z, y, k, classifier, C, random_state)

    # random head: W_1, ..., W_L, then W_out, all N(0, 1); then one permutation of the samples, from which each
    # class takes its first n_per_class members
    rng = np.random.default_rng(random_state)
    sizes = [d, *hidden]
    layers = [rng.standard_normal((sizes[i], sizes[i + 1])) for i in range(len(hidden))]
    output = rng.standard_normal((sizes[-1], k))
    permutation = rng.permutation(n)
    rates = np.zeros(k)
    for c in range(k):
        members = [i for i in permutation if y[i] == c][:n_per_class]
        eigenvalues = np.linalg.eigvalsh(_ntk(z[members], layers, output))
        rates[c] = eigenvalues.mean()

    total = 0.0
    for i in range(n):
        target = np.zeros(k)
        target[y[i]] = 1.0
        logits = target + np.exp(-eta * rates[y[i]] * t) * (start[i] - target)
        top = logits.max()
        log_normaliser = top + np.log(np.sum(np.exp(logits - top)))
        total += logits[y[i]] - log_normaliser
    return float(total / n)
