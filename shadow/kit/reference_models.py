"""Reference models - real fraud models trained on synthetic traffic, for tests, benches and demos.

``build_reference_models`` trains four models on ``TransactionGenerator`` data and converts them
to ONNX (zipmap off), deterministic for a seed and cached on disk by (seed, rows, library
versions, recipe source) so tests, the bench and the demo build them once:

- ``lr``: imputer + StandardScaler + one-hot (in a ColumnTransformer) + LogisticRegression;
- ``mlp``: the same preprocessing + an MLP with two hidden layers of 64;
- ``gbdt``: LightGBM, 200 trees of depth 6, on the numeric and boolean features only (one 2-D
  float input, feature order in the ``features`` metadata): LightGBM's ONNX converter takes a
  float matrix, so string features are left out rather than encoded outside the graph;
- ``degraded``: the gbdt recipe without ``STRONGEST_FEATURES``: a clearly worse candidate;
- ``baseline``: the lr recipe without ``BASELINE_DROPS`` (two strong signals): a "version 1"
  that the full lr improves on, the live model of the demo.

sklearn pipelines take one named input per feature (strings as strings, booleans as 0/1 floats,
missing values as NaN): the worker feeds raw features and the preprocessing is in the graph.
``write_tiny_model`` writes small hand-built models (no training) for fast unit tests.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import inspect
import json
import logging
import warnings
from collections.abc import Iterator
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from shadow.kit import synthetic
from shadow.kit.synthetic import (
    BOOL_FEATURES,
    FEATURE_NAMES,
    NUMERIC_FEATURES,
    STRING_FEATURES,
    STRONGEST_FEATURES,
    TransactionGenerator,
)

logger = logging.getLogger(__name__)

REFERENCE_NAMES = ("lr", "gbdt", "mlp", "degraded", "baseline")
BASELINE_DROPS = ("ip_risk", "amount_to_avg_ratio")
"""What the baseline lacks: two strong signals, so it is good but beatable."""
DEFAULT_CACHE = Path("~/.cache/shadow/models").expanduser()
_OPSET = {"": 17, "ai.onnx.ml": 3}
_LIBRARIES = ("numpy", "scikit-learn", "lightgbm", "skl2onnx", "onnxmltools", "onnx")


class ReferenceModel(NamedTuple):
    """A built model: its ONNX file and the keyword arguments to register it with."""

    path: Path
    info: dict[str, Any]
    """canary, canary_score, feature_names, description, training_data (ModelRegistry.register
    keywords)."""


def build_reference_models(
    out_dir: Path | None = None, seed: int = 7, n_train: int = 60_000
) -> dict[str, ReferenceModel]:
    """Train (or reuse from the cache) the four reference models; name -> ReferenceModel."""
    folder = (out_dir or DEFAULT_CACHE).expanduser() / _cache_key(seed, n_train)
    folder.mkdir(parents=True, exist_ok=True)
    with _locked(folder / ".lock"):
        index = folder / "models.json"
        if not index.is_file():
            _build_all(folder, seed, n_train)
        infos = json.loads(index.read_text())
    return {name: ReferenceModel(folder / f"{name}.onnx", infos[name]) for name in REFERENCE_NAMES}


def reference_canary(seed: int = 7) -> dict[str, Any]:
    """A fixed risky-looking synthetic transaction (the riskiest of 2,000), as plain values."""
    frame = TransactionGenerator(seed + 1000, fraud_rate=0.05).batch(2000)
    riskiest = int(np.argmax(synthetic.fraud_logit(frame)))
    return synthetic.features_of(frame.iloc[riskiest])


def reference_canaries(models: dict[str, ReferenceModel]) -> dict[str, tuple[dict, float]]:
    """Per model: the canary transaction and the score it must reproduce."""
    return {n: (m.info["canary"], m.info["canary_score"]) for n, m in models.items()}


def _build_all(folder: Path, seed: int, n_train: int) -> None:
    from sklearn.metrics import roc_auc_score

    generator = TransactionGenerator(seed)
    train = generator.batch(n_train, tps=2.0)
    test = generator.batch(max(n_train // 2, 1000), tps=2.0)
    canary = reference_canary(seed)
    infos = {}
    for name in REFERENCE_NAMES:
        onnx_bytes, predict = _train(name, train, seed)
        path = folder / f"{name}.onnx"
        path.write_bytes(onnx_bytes)
        auc = float(roc_auc_score(test["label"], predict(test)))
        infos[name] = _info(name, path, canary, auc, seed, n_train)
        logger.info("built reference model %s (holdout ROC-AUC %.3f)", name, auc)
    (folder / "models.json").write_text(json.dumps(infos, indent=1))


def _info(
    name: str, path: Path, canary: dict[str, Any], auc: float, seed: int, n_train: int
) -> dict[str, Any]:
    from shadow.modelcard import card_for_file
    from shadow.scorer import OnnxScorer

    card = card_for_file(path, f"{name}@ref", canary=canary)
    score = OnnxScorer(card, path).score_canary()
    return {
        "canary": canary,
        "canary_score": score,
        "feature_names": list(FEATURE_NAMES),
        "description": f"reference {name} model, holdout ROC-AUC {auc:.4f}",
        "training_data": (
            f"shadow.kit.synthetic TransactionGenerator(seed={seed}) first {n_train} rows"
        ),
    }


def _train(name: str, train: Any, seed: int) -> tuple[bytes, Any]:
    if name in ("lr", "mlp", "baseline"):
        return _train_sklearn(name, train, seed, BASELINE_DROPS if name == "baseline" else ())
    drop = STRONGEST_FEATURES if name == "degraded" else ()
    return _train_lightgbm(train, seed, drop)


def _sklearn_frame(frame: Any, numeric: list[str]) -> Any:
    out = frame[numeric].astype(np.float32)
    for name in STRING_FEATURES:
        out[name] = frame[name].astype(object)
    return out


def _train_sklearn(
    name: str, train: Any, seed: int, drop: tuple[str, ...] = ()
) -> tuple[bytes, Any]:
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType
    from sklearn.compose import ColumnTransformer
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    numeric = [c for c in (*NUMERIC_FEATURES, *BOOL_FEATURES) if c not in drop]
    scale = Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())])
    encode = OneHotEncoder(handle_unknown="ignore")
    prepare = ColumnTransformer([("num", scale, numeric), ("cat", encode, list(STRING_FEATURES))])
    if name in ("lr", "baseline"):
        classifier: Any = LogisticRegression(C=0.5, max_iter=2000)
    else:
        classifier = MLPClassifier(
            (64, 64), alpha=1e-3, batch_size=512, max_iter=30, random_state=seed
        )
    pipe = Pipeline([("prepare", prepare), ("classify", classifier)])
    frame = _sklearn_frame(train, numeric)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        pipe.fit(frame, train["label"])
    types: list[Any] = [(n, FloatTensorType([None, 1])) for n in numeric]
    types += [(n, StringTensorType([None, 1])) for n in STRING_FEATURES]
    model = convert_sklearn(
        pipe,
        name=f"shadow-reference-{name}",  # else a random graph name changes the file's sha256
        initial_types=types,
        target_opset=_OPSET,
        options={id(classifier): {"zipmap": False}},
    )
    return model.SerializeToString(), lambda f: pipe.predict_proba(_sklearn_frame(f, numeric))[:, 1]


def _train_lightgbm(train: Any, seed: int, drop: tuple[str, ...]) -> tuple[bytes, Any]:
    import lightgbm
    import onnxmltools
    from onnxmltools.convert.common.data_types import FloatTensorType

    columns = [c for c in (*NUMERIC_FEATURES, *BOOL_FEATURES) if c not in drop]
    params: dict[str, Any] = {
        "learning_rate": 0.05,
        "subsample": 0.8,
        "subsample_freq": 1,
        "verbose": -1,
    }
    model = lightgbm.LGBMClassifier(
        n_estimators=200,
        max_depth=6,
        num_leaves=31,
        random_state=seed,
        deterministic=True,
        force_row_wise=True,
        n_jobs=2,
        **params,
    )
    model.fit(train[columns].to_numpy(np.float32), train["label"])
    onnx_model = onnxmltools.convert_lightgbm(
        model,
        name="shadow-reference-gbdt",
        initial_types=[("input", FloatTensorType([None, len(columns)]))],
        target_opset=15,  # the highest onnxmltools converts LightGBM to
        zipmap=False,
    )
    entry = onnx_model.metadata_props.add()
    entry.key, entry.value = "features", json.dumps(columns)
    return onnx_model.SerializeToString(), lambda f: np.asarray(
        model.predict_proba(f[columns].to_numpy(np.float32))
    )[:, 1]


def _cache_key(seed: int, n_train: int) -> str:
    versions = [importlib_metadata.version(lib) for lib in _LIBRARIES]
    recipe = inspect.getsource(synthetic) + Path(__file__).read_text(encoding="utf-8")
    digest = hashlib.sha256(json.dumps([seed, n_train, versions, recipe]).encode()).hexdigest()
    return f"seed{seed}-n{n_train}-{digest[:12]}"


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """One builder at a time per cache folder, across processes (tests run in parallel)."""
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def write_tiny_model(path: Path, kind: str = "columns", weight: float = 1.0) -> Path:
    """A small hand-built ONNX model, no training: for fast tests of loading and scoring.

    kinds: ``columns`` (amount, device_risk float + merchant_category string, [N, 2]
    probabilities), ``tensor`` ([N, 3] float input, features in metadata, [N, 1] score),
    ``wrong_shape`` (answers one score whatever N), ``failing`` (raises at run time),
    ``runaway`` (loops max(amount) times before it answers: a deadline test).
    """
    from shadow.kit import tiny_models

    model = tiny_models.build(kind, weight)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(model.SerializeToString())
    return path
