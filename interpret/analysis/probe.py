"""Sparse (L1) probes: how much of a feature all units together carry, and how few units it takes.

A linear read-out of every unit (logistic for binary features, least squares otherwise) is fit
with an L1 penalty (FISTA, warm-started along the path from strong to weak) on the first part of
the text and scored on the held-out rest. Reported: full_score (the weakest penalty's held-out
AUROC or |r|), best_unit and its score, gap = full_score - best_unit_score (how distributed the
feature is), and units_for_95 (fewest units reaching 95% of the full probe's score above chance).
"""
import math

import numpy as np
from scipy.special import expit
from scipy.stats import pearsonr, rankdata


def auroc(score, y):
    """Area under the ROC curve of `score` for binary labels y (ties count half)."""
    y = np.asarray(y) > 0
    n1, n0 = int(y.sum()), int((~y).sum())
    if n1 == 0 or n0 == 0:
        return float("nan")
    r = rankdata(score)
    return float((r[y].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def _score(pred, y, binary):
    if binary:
        return auroc(pred, y)
    if np.std(pred) == 0:
        return 0.0
    return abs(float(pearsonr(pred, y)[0]))


def _above_chance(s, binary):
    return s - 0.5 if binary else s


def _top_eigenvalue(X, iters=50):
    """Largest eigenvalue of X.T X (power iteration; an SVD of a tall X costs far more)."""
    v = np.random.RandomState(0).randn(X.shape[1]).astype(X.dtype)
    ev = 0.0
    for _ in range(iters):
        u = X.T @ (X @ v)
        ev = float(np.linalg.norm(u))
        v = u / max(ev, 1e-30)
    return ev


def _fista(X, y, lam, binary, w, b, iters, L, tol=1e-4):
    """Minimise mean loss + lam * |w|_1 from (w, b); X (n, d) standardised; L a gradient Lipschitz bound."""
    n = len(y)
    z, zb, t = w.copy(), b, 1.0
    for _ in range(iters):
        u = X @ z + zb
        r = (expit(u) - y) if binary else (u - y)  # dLoss/du per row
        gw, gb = X.T @ r / n, float(r.mean())
        w_new = z - gw / L
        w_new = np.sign(w_new) * np.maximum(np.abs(w_new) - lam / L, 0)  # soft threshold
        b_new = zb - gb / L
        t_new = (1 + math.sqrt(1 + 4 * t * t)) / 2  # a Python float: numpy scalars would upcast w
        z = w_new + (t - 1) / t_new * (w_new - w)
        zb = b_new + (t - 1) / t_new * (b_new - b)
        done = np.abs(w_new - w).max() < tol
        w, b, t = w_new, b_new, t_new
        if done:
            break
    return w, b


def sparse_probe(acts, y, binary, *, train_fraction=0.7, n_lambdas=10, iters=200, max_rows=20000):
    """Fit the L1 path on the first train_fraction of rows, score on the rest; returns a dict."""
    acts, y = np.asarray(acts, dtype=np.float32), np.asarray(y, dtype=np.float64)
    n, d = acts.shape
    cut = int(n * train_fraction)
    if cut < 10 or n - cut < 10:
        raise ValueError(f"{n} characters are too few for a probe; record a longer text")
    tr = np.arange(0, cut, max(1, cut // max_rows))
    te = np.arange(cut, n, max(1, (n - cut) // max_rows))
    mu, sd = acts[tr].mean(0), acts[tr].std(0) + 1e-8
    Xtr, Xte = ((acts[tr] - mu) / sd).astype(np.float32), ((acts[te] - mu) / sd).astype(np.float32)
    ytr, yte = y[tr], y[te]
    if binary and (ytr.min() == ytr.max() or yte.min() == yte.max()):
        raise ValueError("the feature is constant on the training or held-out part; use a longer text")
    if not binary:
        ym, ys = ytr.mean(), ytr.std() + 1e-12
        ytr = (ytr - ym) / ys
    single_tr = [_score(Xtr[:, j], ytr, binary) for j in range(d)]
    best = int(np.nanargmax([abs(s - 0.5) if binary else s for s in single_tr]))
    best_te = _score(Xte[:, best], yte, binary)
    best_te = max(best_te, 1 - best_te) if binary else best_te  # the unit's sign is free
    u0 = (ytr - (ytr.mean() if binary else 0))
    lam_max = np.abs(Xtr.T @ u0).max() / len(ytr)
    ytr = ytr.astype(np.float32)
    w, b = np.zeros(d, np.float32), (np.log(ytr.mean() / (1 - ytr.mean())) if binary else 0.0)
    L = float(1.05 * (0.25 if binary else 1.0) * _top_eigenvalue(Xtr) / len(ytr) + 1e-12)
    path = []
    for lam in lam_max * np.logspace(-0.05, -3, n_lambdas):
        w, b = _fista(Xtr, ytr, float(lam), binary, w, b, iters, L)  # a Python float keeps w float32
        path.append({"lambda": float(lam), "n_units": int((w != 0).sum()),
                     "score": _score(Xte @ w + b, yte, binary), "units": np.flatnonzero(w).tolist()})
    full = path[-1]["score"]
    target = 0.95 * _above_chance(full, binary)
    enough = [p["n_units"] for p in path if _above_chance(p["score"], binary) >= target and p["n_units"] > 0]
    if _above_chance(full, binary) <= 0:
        enough = []  # the full probe is no better than chance on held-out text: nothing to reach
    return {"metric": "auroc" if binary else "abs_pearson_r", "full_score": full,
            "full_units": path[-1]["n_units"], "best_unit": best, "best_unit_score": best_te,
            "gap": full - best_te, "units_for_95": min(enough) if enough else None,
            "n_train": len(tr), "n_test": len(te), "path": path}
