#!/usr/bin/env python3
"""Peer baselines on edgerec's evaluation splits: implicit's ALS and BPR, EASE and item-kNN.

Reads the splits that `edgerec eval` writes (one directory per protocol under --splits),
fits each peer on train.tsv, and writes each one's top-n rows for the users in users.tsv plus
the fit and recommend times, so that edgerec's Rust evaluator scores the peers with the same
metric code as our own models.

    python bench/peers.py --splits DIR --out DIR [--only PROTOCOL]... [--method NAME]...
                          [--threads N]     (default 1; 0 = all cores)

Input, per protocol directory <splits>/<protocol>/:
  train.tsv    header `user<TAB>item<TAB>weight`; dense 0-based integer ids (items < n_items,
               users < n_users), weight a positive finite float r. Repeated (user, item) rows
               are summed.
  users.tsv    header `user`; the users to recommend for, in output order (repeats dropped).
               Every listed user gets a row, also one absent from train (see "cold users").
  params.json  n_users, n_items, n, factors, iterations, regularization, alpha, seed,
               bpr{factors, learning_rate, regularization, iterations}, ease{lambda},
               item_knn{neighbours, shrink}; missing
               keys take the defaults in DEFAULTS below.

Output, per protocol <out>/<protocol>/:
  implicit-als.tsv, implicit-bpr.tsv, ease.tsv, item-knn.tsv
               header `user<TAB>rank<TAB>item`; ranks 1..n per listed user, items the user has
               in train excluded; fewer than n rows for a user only when fewer unseen items
               exist. Users in users.tsv order, ranks ascending.
  timings.json {"<method>": {"fit_s", "recommend_s", "threads", "settings", "versions"}, ...}:
               fit_s is measured around the model's fit only (for EASE: the Gram matrix, its
               inverse and B); recommend_s around scoring and top-n selection for all listed
               users (not writing). settings and versions are repeated in every entry so that
               each entry stands alone.

The models:
  implicit-als  implicit.cpu.als.AlternatingLeastSquares (Hu, Koren & Volinsky 2008, with the
                conjugate-gradient solver), float32. Confidence convention: edgerec uses
                c = 1 + alpha*r. implicit 0.7.3 does NOT add the 1: its fit() multiplies the
                matrix by `alpha` and uses each stored value directly as the confidence c_ui of
                an observed pair (cpu/als.py, `Cui = self.alpha * Cui`; the solvers accumulate
                (c - 1) y y^T into A and c y into b, unobserved pairs having c = 1, p = 0).
                Passing r with alpha would give c = alpha*r. So this script passes the matrix
                1 + alpha*r and alpha=1.0 to the model, which gives exactly c = 1 + alpha*r
                (checked against the closed-form least-squares solution).
  implicit-bpr  implicit.cpu.bpr.BayesianPersonalizedRanking (Rendle et al. 2009) on the
                binarised train matrix (BPR ignores weights), verify_negative_samples=True.
                With more than one thread its SGD is Hogwild and not bit-reproducible between
                runs (the default --threads 1 is).
  ease          EASE (Steck 2019), closed form in numpy/scipy (float64) on the binarised train
                matrix X: P = (X^T X + lambda I)^-1, B = -P / diag(P) column-wise, diag(B) = 0,
                scores = X B. Ties are broken by item index, so its rows are fully
                deterministic. Memory: one dense n_items x n_items float64 matrix (plus the
                sparse Gram matrix while it is built): 3.2 GB at 20,000 items.
  item-knn      item-based collaborative filtering (Sarwar et al. 2001; Deshpande & Karypis
                2004) on the binarised train matrix X: cosine similarity with shrinkage,
                s_ij = |U_i ∩ U_j| / (sqrt(|U_i| |U_j|) + shrink), each item keeping only its
                `neighbours` most similar items (ties to the lower index), scores = X S. The
                classic "because you watched" model, and the neighbour-list form a device can
                ship. float64, deterministic; ties in scores broken by item index.

Cold users (listed but without train rows) get whatever the model gives them: near-random
factors for ALS and BPR, all-zero scores (so the lowest item indices) for EASE and item-kNN. Their number is
printed. ALS and BPR rows are ordered by score then item index; which of several items tied at
the n-th score gets in is implicit's choice (deterministic for a given input).

Threads: --threads N is passed to implicit's num_threads and used as the BLAS thread limit for
EASE; 0 means all cores. The default is 1: every method's rows are then reproducible (BPR's are
not with more threads), and timings stay steady on a shared machine, where spinning OpenMP and
OpenBLAS threads competing with other work were seen to slow fits down by 2-30x. The number used
is recorded in timings.json. OpenBLAS's own thread pool is set to one thread before numpy is
imported (implicit warns otherwise: BLAS threads inside its parallel loops slow ALS down).
"""

import os

# Before numpy is imported: implicit's parallel loops call BLAS, and a threaded BLAS inside them
# is much slower (implicit.utils.check_blas_config warns about it). EASE raises the limit again
# with threadpoolctl around its own BLAS calls.
os.environ["OPENBLAS_NUM_THREADS"] = "1"
os.environ["MKL_NUM_THREADS"] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import scipy  # noqa: E402
import scipy.linalg  # noqa: E402
import scipy.sparse as sp  # noqa: E402
import threadpoolctl  # noqa: E402

import implicit  # noqa: E402
from implicit.cpu.als import AlternatingLeastSquares  # noqa: E402
from implicit.cpu.bpr import BayesianPersonalizedRanking  # noqa: E402

METHODS = ("implicit-als", "implicit-bpr", "ease", "item-knn")

DEFAULTS = {
    "n": 100,
    "factors": 64,
    "iterations": 15,
    "regularization": 0.05,
    "alpha": 2.0,
    "seed": 1,
    "bpr": {"factors": 64, "learning_rate": 0.01, "regularization": 0.01, "iterations": 100},
    "ease": {"lambda": 250.0},
    "item_knn": {"neighbours": 100, "shrink": 10.0},
}

# implicit's topk marks filtered (already liked) items with this score instead of -inf.
FILTERED_SCORE = float(np.finfo(np.float32).min) / 2


class InputError(Exception):
    """Malformed input, reported as `file:line: message`."""

    def __init__(self, path, line, message):
        where = f"{path}:{line}" if line else str(path)
        super().__init__(f"{where}: {message}")


# ---------------------------------------------------------------------------------------------
# Reading a split


def read_params(path):
    params = json.loads(json.dumps(DEFAULTS))  # deep copy
    if not path.exists():
        return params
    try:
        given = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise InputError(path, e.lineno, f"invalid JSON: {e.msg}") from None
    if not isinstance(given, dict):
        raise InputError(path, 1, "expected a JSON object")
    for key, value in given.items():
        if isinstance(value, dict) and isinstance(params.get(key), dict):
            params[key].update(value)
        else:
            params[key] = value

    def check(holder, key, kind, where):
        value = holder.get(key)
        if value is None:
            return
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        if kind is int:
            ok = ok and float(value).is_integer() and value >= 0
        else:
            ok = ok and value >= 0
        if not ok:
            raise InputError(path, None, f"{where}{key} must be a non-negative {kind.__name__}, got {value!r}")
        holder[key] = kind(value)

    for key in ("n_users", "n_items", "n", "factors", "iterations", "seed"):
        check(params, key, int, "")
    for key in ("regularization", "alpha"):
        check(params, key, float, "")
    for key in ("factors", "iterations"):
        check(params["bpr"], key, int, "bpr.")
    for key in ("learning_rate", "regularization"):
        check(params["bpr"], key, float, "bpr.")
    check(params["ease"], "lambda", float, "ease.")
    check(params["item_knn"], "neighbours", int, "item_knn.")
    check(params["item_knn"], "shrink", float, "item_knn.")
    if params["item_knn"]["neighbours"] < 1:
        raise InputError(path, None, "item_knn.neighbours must be at least 1")
    if params["n"] < 1:
        raise InputError(path, None, "n must be at least 1")
    if params.get("n_items") == 0:
        raise InputError(path, None, "n_items must be at least 1")
    return params


def check_header(path, f, expected):
    first = f.readline()
    found = first.rstrip("\r\n")
    if found != expected:
        raise InputError(path, 1, f"bad header {found!r}: expected {expected!r}")


def parse_int(path, line, field, what, limit, limit_name):
    try:
        value = int(field)
    except ValueError:
        raise InputError(path, line, f"{what} {field!r} is not an integer") from None
    if value < 0:
        raise InputError(path, line, f"{what} {value} is negative")
    if limit is not None and value >= limit:
        raise InputError(path, line, f"{what} {value} is not below {limit_name} = {limit}")
    return value


def scan_train(path, n_users, n_items):
    """Line-by-line check of train.tsv: raises the InputError of the first bad line."""
    with path.open() as f:
        check_header(path, f, "user\titem\tweight")
        for line, text in enumerate(f, start=2):
            if not text.strip():
                continue  # blank lines are skipped, as numpy's reader does
            fields = text.rstrip("\r\n").split("\t")
            if len(fields) != 3:
                raise InputError(path, line, f"expected 3 tab-separated fields, found {len(fields)}")
            parse_int(path, line, fields[0], "user", n_users, "n_users")
            parse_int(path, line, fields[1], "item", n_items, "n_items")
            try:
                weight = float(fields[2])
            except ValueError:
                raise InputError(path, line, f"weight {fields[2]!r} is not a number") from None
            if not (math.isfinite(weight) and weight > 0):
                raise InputError(path, line, f"weight {fields[2]!r} is not a positive finite number")


def read_train(path, n_users, n_items):
    """(users, items, weights) arrays of train.tsv, checked. Fast path with numpy's C parser;
    on any problem the file is rescanned line by line to name the first bad line."""
    with path.open() as f:
        check_header(path, f, "user\titem\tweight")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # "input contained no data"
                rows = np.loadtxt(
                    f,
                    delimiter="\t",
                    comments=None,
                    ndmin=1,
                    dtype=[("user", "i8"), ("item", "i8"), ("weight", "f8")],
                )
        except ValueError:
            rows = None
    if rows is not None:
        users, items, weights = rows["user"], rows["item"], rows["weight"]
        ok = (
            (users >= 0).all()
            and (items >= 0).all()
            and (items < n_items).all()
            and (n_users is None or (users < n_users).all())
            and np.isfinite(weights).all()
            and (weights > 0).all()
        )
        if ok:
            return users, items, weights
    scan_train(path, n_users, n_items)
    raise InputError(path, None, "could not be parsed")


def read_users(path, n_users):
    users, seen = [], set()
    with path.open() as f:
        check_header(path, f, "user")
        for line, text in enumerate(f, start=2):
            if not text.strip():
                continue
            u = parse_int(path, line, text.rstrip("\r\n"), "user", n_users, "n_users")
            if u not in seen:
                seen.add(u)
                users.append(u)
    return np.asarray(users, dtype=np.int64)


class Split:
    """One protocol's train matrix, listed users and parameters."""

    def __init__(self, directory):
        self.name = directory.name
        self.params = read_params(directory / "params.json")
        n_items = self.params.get("n_items")
        n_users = self.params.get("n_users")
        if n_items is None:
            raise InputError(directory / "params.json", None, "n_items is missing")
        for name in ("train.tsv", "users.tsv"):
            if not (directory / name).is_file():
                raise InputError(directory / name, None, "missing")
        users, items, weights = read_train(directory / "train.tsv", n_users, n_items)
        self.listed = read_users(directory / "users.tsv", n_users)
        if n_users is None:
            n_users = int(max(users.max(initial=-1), self.listed.max(initial=-1))) + 1
        self.n_users, self.n_items = n_users, n_items
        self.train_rows = len(users)
        # Summed weights r of each (user, item) pair: COO → CSR adds up repeats.
        r = sp.coo_matrix((weights, (users, items)), shape=(n_users, n_items)).tocsr()
        r.sum_duplicates()
        r.sort_indices()
        self.r = r
        self.binary = r.copy()
        self.binary.data = np.ones_like(r.data)
        self.cold = int((np.diff(r.indptr)[self.listed] == 0).sum()) if len(self.listed) else 0


# ---------------------------------------------------------------------------------------------
# Models


def resolved_threads(threads):
    return threads if threads > 0 else (os.cpu_count() or 1)


def versions():
    return {
        "implicit": implicit.__version__,
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "threadpoolctl": threadpoolctl.__version__,
        "python": platform.python_version(),
        "blas": sorted(
            {f"{i.get('internal_api')} {i.get('version')}" for i in threadpoolctl.threadpool_info() if i.get("user_api") == "blas"}
        ),
    }


def canonical_rows(ids, scores, split, users):
    """Rows of implicit's recommend output without filtered slots, ordered by score then item."""
    ids = np.asarray(ids)
    scores = np.asarray(scores, dtype=np.float64)
    order = np.lexsort((ids, -scores), axis=1)
    ids = np.take_along_axis(ids, order, axis=1)
    scores = np.take_along_axis(scores, order, axis=1)
    rows = []
    for u, row_ids, row_scores in zip(users, ids, scores):
        keep = (row_ids >= 0) & (row_scores > FILTERED_SCORE) & np.isfinite(row_scores)
        row = row_ids[keep]
        liked = split.r.indices[split.r.indptr[u] : split.r.indptr[u + 1]]
        if np.isin(row, liked).any():
            raise RuntimeError(f"{split.name}: a train item of user {u} was recommended")
        rows.append(row)
    return rows


def run_implicit(model, split, n):
    users = split.listed
    k = min(n, split.n_items)
    start = time.perf_counter()
    if len(users):
        ids, scores = model.recommend(users, split.r[users], N=k, filter_already_liked_items=True)
        rows = canonical_rows(ids, scores, split, users)
    else:
        rows = []
    return rows, time.perf_counter() - start


def fit_als(split, threads):
    p = split.params
    settings = {
        "model": "implicit.cpu.als.AlternatingLeastSquares",
        "factors": p["factors"],
        "regularization": p["regularization"],
        "alpha": p["alpha"],
        "iterations": p["iterations"],
        "random_state": p["seed"],
        "dtype": "float32",
        "use_cg": True,
        "confidence": "1 + alpha*r: matrix passed as 1 + alpha*r with the model's alpha = 1.0",
    }
    confidence = split.r.astype(np.float32)
    confidence.data = 1.0 + np.float32(p["alpha"]) * confidence.data
    model = AlternatingLeastSquares(
        factors=p["factors"],
        regularization=p["regularization"],
        alpha=1.0,
        iterations=p["iterations"],
        calculate_training_loss=False,
        num_threads=threads,
        random_state=p["seed"],
    )
    start = time.perf_counter()
    model.fit(confidence, show_progress=False)
    return model, time.perf_counter() - start, settings


def fit_bpr(split, threads):
    b = split.params["bpr"]
    settings = {
        "model": "implicit.cpu.bpr.BayesianPersonalizedRanking",
        "factors": b["factors"],
        "learning_rate": b["learning_rate"],
        "regularization": b["regularization"],
        "iterations": b["iterations"],
        "random_state": split.params["seed"],
        "verify_negative_samples": True,
        "dtype": "float32",
        "input": "binarised train matrix",
    }
    model = BayesianPersonalizedRanking(
        factors=b["factors"],
        learning_rate=b["learning_rate"],
        regularization=b["regularization"],
        iterations=b["iterations"],
        num_threads=threads,
        verify_negative_samples=True,
        random_state=split.params["seed"],
    )
    binary = split.binary.astype(np.float32)
    start = time.perf_counter()
    model.fit(binary, show_progress=False)
    return model, time.perf_counter() - start, settings


def ease_weights(x, lam):
    """B of EASE for the binary users × items CSR matrix x: B = -P / diag(P) column-wise with
    P = (x^T x + lam I)^-1, and a zero diagonal. Cholesky in place, float64."""
    n = x.shape[1]
    g = (x.T @ x).toarray().astype(np.float64, copy=False)
    g[np.diag_indices(n)] += lam
    # g is symmetric, so its transpose (a Fortran-ordered view) is the same matrix and LAPACK
    # can work in place instead of on a copy.
    c, info = scipy.linalg.lapack.dpotrf(g.T, lower=False, overwrite_a=True, clean=False)
    if info != 0:
        raise RuntimeError(f"EASE: Cholesky failed (info {info}); is lambda positive?")
    p, info = scipy.linalg.lapack.dpotri(c, lower=False, overwrite_c=True)
    if info != 0:
        raise RuntimeError(f"EASE: inverse failed (info {info})")
    # dpotri fills the upper triangle; mirror it into the lower one a block at a time.
    block = 1024
    for s in range(0, n, block):
        e = min(s + block, n)
        p[s:e, :s] = p[:s, s:e].T
        d = p[s:e, s:e]
        p[s:e, s:e] = np.triu(d) + np.triu(d, 1).T
    diag = np.diag(p).copy()
    p /= -diag  # column j divided by -P_jj
    p[np.diag_indices(n)] = 0.0
    return p


def item_knn_weights(x, neighbours, shrink):
    """S of item-kNN for the binary users × items CSR matrix x: shrunk cosine similarities, each
    column j keeping the `neighbours` largest s_ij (i != j; ties to the lower i), as CSR so that
    scores = x @ S. float64."""
    n = x.shape[1]
    g = (x.T @ x).toarray().astype(np.float64, copy=False)
    counts = np.diag(g).copy()
    np.fill_diagonal(g, 0.0)
    g /= np.sqrt(np.outer(counts, counts)) + shrink
    k = min(neighbours, max(n - 1, 1))
    rows, cols, vals = [], [], []
    for j in range(n):
        col = g[:, j]
        # Largest first, ties to the lower index: lexsort by (index, -score).
        cand = np.flatnonzero(col > 0)
        if cand.size == 0:
            continue
        order = np.lexsort((cand, -col[cand]))[:k]
        keep = cand[order]
        rows.extend(keep.tolist())
        cols.extend([j] * keep.size)
        vals.extend(col[keep].tolist())
    return scipy.sparse.csr_matrix((vals, (rows, cols)), shape=(n, n))


def top_n(scores, k):
    """Per row of a dense score matrix: the k best finite-scored columns, by score then column
    index. Rows with ties at the k-th score take the lowest indices among the tied ones."""
    k = min(k, scores.shape[1])
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    part_scores = np.take_along_axis(scores, part, axis=1)
    threshold = part_scores.min(axis=1)
    at_or_above = (scores >= threshold[:, None]).sum(axis=1)
    order = np.lexsort((part, -part_scores), axis=1)
    best = np.take_along_axis(part, order, axis=1)
    rows = []
    for i in range(scores.shape[0]):
        if at_or_above[i] > k or not np.isfinite(threshold[i]):
            # Ties straddle the cut (or fewer than k finite scores): take the candidates in
            # index order and sort stably by score.
            cand = np.flatnonzero(scores[i] >= threshold[i])
            cand = cand[np.isfinite(scores[i, cand])]
            row = cand[np.argsort(-scores[i, cand], kind="stable")][:k]
        else:
            row = best[i]
        rows.append(row)
    return rows


def run_item_model(b, split, n, threads):
    """Rows of an item-to-item model (EASE's dense B, item-kNN's sparse S): scores = x B."""
    users = split.listed
    rows = []
    start = time.perf_counter()
    # Score in batches of about 2^24 cells.
    batch = max(1, (1 << 24) // max(1, split.n_items))
    with threadpoolctl.threadpool_limits(limits=threads, user_api="blas"):
        for s in range(0, len(users), batch):
            chunk = users[s : s + batch]
            x = split.binary[chunk]
            product = x @ b
            scores = product.toarray() if scipy.sparse.issparse(product) else np.asarray(product)
            coo = x.tocoo()
            scores[coo.row, coo.col] = -np.inf
            rows.extend(top_n(scores, n))
    return rows, time.perf_counter() - start


# ---------------------------------------------------------------------------------------------
# Output


def write_rows(path, users, rows):
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w") as f:
        f.write("user\trank\titem\n")
        for u, row in zip(users.tolist(), rows):
            f.write("".join(f"{u}\t{r}\t{i}\n" for r, i in enumerate(row.tolist(), start=1)))
    tmp.replace(path)


def run_protocol(directory, out_root, methods, threads):
    split = Split(directory)
    n = split.params["n"]
    out = out_root / split.name
    out.mkdir(parents=True, exist_ok=True)
    blas_threads = resolved_threads(threads)
    info = versions()
    timings = {}
    results = []
    for method in methods:
        if method == "ease":
            lam = split.params["ease"]["lambda"]
            start = time.perf_counter()
            with threadpoolctl.threadpool_limits(limits=blas_threads, user_api="blas"):
                b = ease_weights(split.binary, lam)
            fit_s = time.perf_counter() - start
            rows, rec_s = run_item_model(b, split, n, blas_threads)
            del b
            settings = {"lambda": lam, "dtype": "float64", "input": "binarised train matrix"}
        elif method == "item-knn":
            knn = split.params["item_knn"]
            start = time.perf_counter()
            s = item_knn_weights(split.binary, knn["neighbours"], knn["shrink"])
            fit_s = time.perf_counter() - start
            rows, rec_s = run_item_model(s, split, n, blas_threads)
            del s
            settings = {
                "neighbours": knn["neighbours"],
                "shrink": knn["shrink"],
                "similarity": "cosine with shrinkage",
                "dtype": "float64",
                "input": "binarised train matrix",
            }
        else:
            fit = fit_als if method == "implicit-als" else fit_bpr
            model, fit_s, settings = fit(split, threads)
            rows, rec_s = run_implicit(model, split, n)
        write_rows(out / f"{method}.tsv", split.listed, rows)
        timings[method] = {
            "fit_s": round(fit_s, 6),
            "recommend_s": round(rec_s, 6),
            "threads": blas_threads,
            "settings": settings,
            "versions": info,
        }
        results.append((split, method, fit_s, rec_s, blas_threads))
    tmp = out / "timings.json.tmp"
    tmp.write_text(json.dumps(timings, indent=2) + "\n")
    tmp.replace(out / "timings.json")
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(
        description="Fit implicit's ALS and BPR, EASE and item-kNN on edgerec's evaluation splits and write their top-n rows and timings.",
    )
    parser.add_argument("--splits", required=True, type=Path, help="directory of protocol directories written by `edgerec eval`")
    parser.add_argument("--out", required=True, type=Path, help="output directory (one subdirectory per protocol)")
    parser.add_argument("--only", action="append", default=[], metavar="PROTOCOL", help="run only this protocol (repeatable)")
    parser.add_argument("--method", action="append", default=[], choices=METHODS, help="run only this method (repeatable; default all)")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="threads for implicit and for EASE's BLAS; 0: all cores (default 1: reproducible rows, steady timings)",
    )
    args = parser.parse_args(argv)
    if args.threads < 0:
        parser.error("--threads must be >= 0")
    if not args.splits.is_dir():
        parser.error(f"--splits {args.splits}: not a directory")
    protocols = sorted(d for d in args.splits.iterdir() if d.is_dir() and (d / "train.tsv").is_file())
    if args.only:
        names = {d.name for d in protocols}
        missing = [p for p in args.only if p not in names]
        if missing:
            parser.error(f"no protocol {', '.join(missing)} under {args.splits} (have: {', '.join(sorted(names)) or 'none'})")
        protocols = [d for d in protocols if d.name in set(args.only)]
    if not protocols:
        parser.error(f"no protocol directory with a train.tsv under {args.splits}")
    methods = [m for m in METHODS if not args.method or m in args.method]

    header = f"{'protocol':<28} {'method':<13} {'fit_s':>9} {'recommend_s':>12} {'threads':>7} {'users':>8} {'cold':>6} {'items':>7}"
    try:
        for i, directory in enumerate(protocols):
            results = run_protocol(directory, args.out, methods, args.threads)
            if i == 0:
                print(header)
                print("-" * len(header))
            for split, method, fit_s, rec_s, threads in results:
                print(
                    f"{split.name:<28} {method:<13} {fit_s:>9.3f} {rec_s:>12.3f} {threads:>7} "
                    f"{len(split.listed):>8} {split.cold:>6} {split.n_items:>7}",
                    flush=True,
                )
    except InputError as e:
        print(f"peers.py: error: {e}", file=sys.stderr)
        return 2
    print(f"implicit {implicit.__version__}, numpy {np.__version__}, scipy {scipy.__version__}; rows and timings.json in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
