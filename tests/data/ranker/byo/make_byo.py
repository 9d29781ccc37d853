"""Bring-your-own-ranker fixture: scikit-learn models, converted by skl2onnx, that follow the
edgerec-ranker/1 contract with no bag inputs (see README.md here and src/ranker/mod.rs).

Makes, next to this file:
  logistic_regression.onnx  LogisticRegression (ONNX-ML LinearClassifier)
  random_forest.onnx        small RandomForestClassifier (TreeEnsembleClassifier)
  gradient_boosting.onnx    small GradientBoostingClassifier (TreeEnsembleClassifier, LOGISTIC):
                            tract 0.23.9 cannot load it (it wants one base value per class label,
                            skl2onnx writes one for a binary model), so it is listed under
                            "unsupported" and a bundle must refuse it
  narrow.onnx               LogisticRegression on D-1 features: a bundle must refuse it
  expected.json             scikit-learn's predict_proba(X)[:, 1] on the rows of ../inputs.json
Each model reads `dense` float32 [batch, D] (D = the width of inputs.json's `dense` rows, the
core's tiny test feature space) and writes `label` and `probabilities` [batch, 2]; P(watch) is
column 1. The training set is synthetic and deterministic (fixed seed).

Rerun: bash scripts/byo-fixture.sh   (installs requirements.txt into a venv, then runs this
with PYTHONHASHSEED=0, which makes the .onnx bytes reproducible).
"""

import json
from pathlib import Path

import numpy as np
import onnx
import skl2onnx
import sklearn
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import FloatTensorType
from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression

HERE = Path(__file__).resolve().parent
INPUTS = HERE.parent / "inputs.json"
# Upper bounds on the opsets: skl2onnx writes the lowest each model needs (here ai.onnx 16 or
# 17, ai.onnx.ml 1), which tract 0.23.9 loads.
OPSET = {"": 17, "ai.onnx.ml": 3}
SEED = 20261129
# tract 0.23.9 wants TreeEnsembleClassifier's base_values to have one value per class label;
# skl2onnx writes a single base value for a binary GradientBoostingClassifier.
UNSUPPORTED = {"gradient_boosting": "attribute base_values has 1 values, expected 2"}


def dense_rows(doc):
    """The `dense` vector of every row of inputs.json (a list of rows, or {"rows": [...]})."""
    rows = doc["rows"] if isinstance(doc, dict) else doc
    return [r["dense"] if isinstance(r, dict) else r for r in rows]


def training_set(inputs, n=4000):
    """Rows spread around the inputs' per-feature mean and spread; labels from a fixed logistic
    rule with noise, so every feature matters a little and probabilities are not all 0 or 1."""
    rng = np.random.default_rng(SEED)
    d = inputs.shape[1]
    center = inputs.mean(axis=0, dtype=np.float64)
    spread = inputs.std(axis=0, dtype=np.float64)
    spread = np.where(spread > 0, spread, np.maximum(np.abs(center) * 0.1, 1.0))
    z = rng.normal(size=(n, d))
    x = (center + spread * z).astype(np.float32)
    w = rng.normal(size=d) * 2.0 / np.sqrt(d)
    y = (rng.random(n) < 1.0 / (1.0 + np.exp(-(z @ w)))).astype(np.int64)
    return x, y


def to_onnx(model, d, name):
    onx = convert_sklearn(
        model,
        name=name,
        initial_types=[("dense", FloatTensorType([None, d]))],
        options={id(model): {"zipmap": False}},
        target_opset=OPSET,
    )
    onnx.checker.check_model(onx, full_check=True)
    return onx.SerializeToString()


def main():
    raw = INPUTS.read_bytes()
    inputs = np.asarray(dense_rows(json.loads(raw)), dtype=np.float32)
    d = inputs.shape[1]
    x, y = training_set(inputs)
    models = {
        "logistic_regression": LogisticRegression(max_iter=10_000),
        "random_forest": RandomForestClassifier(n_estimators=10, max_depth=5, random_state=SEED),
        "gradient_boosting": GradientBoostingClassifier(
            n_estimators=20, max_depth=3, random_state=SEED
        ),
    }
    expected = {
        "inputs": "tests/data/ranker/inputs.json",
        # FNV-1a 64 of inputs.json: the test says to rerun this script when it changed.
        "inputs_fnv1a64": fnv1a64(raw),
        "rows": int(inputs.shape[0]),
        "d": int(d),
        "versions": {
            "scikit-learn": sklearn.__version__,
            "skl2onnx": skl2onnx.__version__,
            "onnx": onnx.__version__,
        },
        "models": [],
        # Valid ONNX that edgerec refuses; "refusal" is part of the error a bundle gives.
        "unsupported": [],
    }
    for name, model in models.items():
        model.fit(x, y)
        (HERE / f"{name}.onnx").write_bytes(to_onnx(model, d, name))
        entry = {
            "name": name,
            "file": f"{name}.onnx",
            "kind": "sklearn-" + name.replace("_", "-") + "/1",
            "p_watch": [float(v) for v in model.predict_proba(inputs)[:, 1]],
        }
        if name in UNSUPPORTED:
            expected["unsupported"].append({**entry, "refusal": UNSUPPORTED[name]})
        else:
            expected["models"].append(entry)
    # The same kind of model trained without the last feature: its input is [batch, D-1].
    narrow = LogisticRegression(max_iter=10_000).fit(x[:, : d - 1], y)
    (HERE / "narrow.onnx").write_bytes(to_onnx(narrow, d - 1, "narrow"))
    expected["narrow"] = {"file": "narrow.onnx", "d": int(d - 1)}
    (HERE / "expected.json").write_text(json.dumps(expected, indent=1) + "\n")
    print(f"D = {d}, {inputs.shape[0]} rows: wrote", ", ".join(models), "and narrow")


def fnv1a64(data):
    h = 0xCBF29CE484222325
    for b in data:
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


if __name__ == "__main__":
    main()
