"""Training and inference cost: CatBoost vs LightGBM on a wide synthetic table, and the latency of
one prediction (feature row from a stored run + every champion model + TreeSHAP).

    .venv/bin/python benchmarks/training.py                  # 100k rows x 300 features
    .venv/bin/python benchmarks/training.py --rows 20000 --features 100 --iterations 100

Each model is fit in its own process (spawn), so its peak memory (ru_maxrss) is its own. The
iteration count is fixed (early stopping cannot end a fit early), so the two libraries do the
same amount of boosting. Prints one JSON object.
"""

from __future__ import annotations

import os
import sys

# Run as a script, benchmarks/ is sys.path[0]: a sibling named like a stdlib module (queue.py)
# would shadow it for every library imported below.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _HERE]

import argparse  # noqa: E402
import gc  # noqa: E402
import json  # noqa: E402
import multiprocessing as mp  # noqa: E402
import resource  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import psutil  # noqa: E402

N_CATEGORICAL = 5
TARGET = "target__views__7d"


def make_table(rows: int, features: int, seed: int = 0) -> pd.DataFrame:
    """Table-shaped rows: numeric f*, categorical c*, a nonlinear target, random splits."""
    rng = np.random.default_rng(seed)
    n_num = features - N_CATEGORICAL
    x = rng.standard_normal((rows, n_num)).astype("float64")
    x[rng.random((rows, n_num)) < 0.05] = np.nan  # some missing values, as in real tables
    data = {f"f{i:03d}": x[:, i] for i in range(n_num)}
    cats = rng.integers(0, 20, (rows, N_CATEGORICAL))
    for j in range(N_CATEGORICAL):
        data[f"c{j}"] = pd.array([f"level{v}" for v in cats[:, j]], dtype="string")
    xf = np.nan_to_num(x[:, :10])
    y = (
        5
        + xf[:, 0]
        + 0.5 * xf[:, 1] * xf[:, 2]
        + np.sin(xf[:, 3])
        + 0.3 * cats[:, 0] / 20
        + rng.normal(0, 0.3, rows)
    )
    data[TARGET] = y
    data[f"{TARGET}__mask"] = np.ones(rows, dtype=bool)
    u = rng.random(rows)
    split = np.where(u < 0.7, "train", np.where(u < 0.85, "valid", "test"))
    data["split_time"] = pd.array(split, dtype="string")
    data["split_channel"] = pd.array(split, dtype="string")
    return pd.DataFrame(data)


class RssSampler:
    """Peak resident memory of this process while the block runs (sampled every 5 ms): the
    fit's own memory, without the table generation before it."""

    def __init__(self, every_s: float = 0.005) -> None:
        self.every_s = every_s
        self.start_mb = self.peak_mb = 0.0
        self._stop = threading.Event()

    def _rss_mb(self) -> float:
        return psutil.Process().memory_info().rss / 2**20

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            self.peak_mb = max(self.peak_mb, self._rss_mb())

    def __enter__(self) -> RssSampler:
        self.start_mb = self.peak_mb = self._rss_mb()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_mb = max(self.peak_mb, self._rss_mb())


def _fit_child(args: tuple[str, int, int, int, int], queue) -> None:
    algorithm, rows, features, iterations, threads = args
    from trendflow.training.config import TrainingParams
    from trendflow.training.features import select_features
    from trendflow.training.models import fit_model

    table = make_table(rows, features)
    params = TrainingParams.parse(
        {
            "threads": threads,
            "early_stopping_rounds": iterations,
            "catboost": {"iterations": iterations},
            "lightgbm": {"num_boost_round": iterations},
        }
    )
    spec = select_features(table, params)
    train, valid = table[table["split_time"] == "train"], table[table["split_time"] == "valid"]
    gc.collect()
    sampler = RssSampler()
    start = time.perf_counter()
    with sampler:
        model = fit_model(
            algorithm, train, train[TARGET].to_numpy(), valid, valid[TARGET].to_numpy(), spec, params
        )
    fit_s = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    test = table[table["split_time"] == "test"]
    start = time.perf_counter()
    pred = model.predict(test)
    predict_s = time.perf_counter() - start
    rmse = float(np.sqrt(np.mean((pred - test[TARGET].to_numpy()) ** 2)))
    queue.put(
        {
            "fit_s": round(fit_s, 3),
            "train_rows_per_s": round(len(train) * iterations / fit_s, 1),
            "predict_test_s": round(predict_s, 3),
            "fit_peak_rss_increase_mb": round(sampler.peak_mb - sampler.start_mb, 1),
            "rss_at_fit_start_mb": round(sampler.start_mb, 1),
            "process_peak_rss_mb": round(peak, 1),
            "best_iteration": model.best_iteration,
            "test_rmse": round(rmse, 4),
            "features": len(spec.features),
            "train_rows": len(train),
        }
    )


def fit_in_child(algorithm: str, rows: int, features: int, iterations: int, threads: int) -> dict:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_fit_child, args=((algorithm, rows, features, iterations, threads), queue))
    proc.start()
    result = queue.get(timeout=3600)
    proc.join(timeout=60)
    return result


def inference_latency(videos: int, threads: int) -> dict:
    """Train a small bundle on the SYNTHETIC corpus, then time predictions from stored runs."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.training.tables import dataset_params, synthetic_table, training_params
    from trendflow.inference.features import build_feature_row
    from trendflow.inference.models import from_bundle
    from trendflow.inference.predict import predict_video
    from trendflow.inference.schema import Snapshot1Facts
    from trendflow.pipelines.training import nodes
    from trendflow.storage.store import ResultStore
    from trendflow.training.bundle import save_bundle

    with tempfile.TemporaryDirectory() as tmp:
        table, metadata, root = synthetic_table(Path(tmp), n_videos=240, n_channels=30)
        params = training_params(threads=threads)
        spec = nodes.select_features(table, params)
        result = nodes.fit_models(table, spec, params)
        metrics, _, _ = nodes.evaluate_models(result, table, params)
        bundle, _, _ = nodes.build_bundle(
            result, metrics, nodes.make_manifest(table, metadata, params), params
        )
        save_bundle(bundle, Path(tmp) / "bundle")
        models = from_bundle(str(Path(tmp) / "bundle"))
        store = ResultStore(str(root / "store"))
        snaps = pd.read_parquet(root / "snapshots.parquet").sort_values("snapshot_at")
        first = snaps.drop_duplicates("video_id").set_index("video_id")
        rows = table[table["run__present"]].head(videos)
        feature_ms, total_ms = [], []
        for video_id, run_id in zip(rows["video_id"], rows["run_id"], strict=True):
            s = first.loc[video_id]
            facts = Snapshot1Facts(
                snapshot_at=s["snapshot_at"],
                published_at=s["published_at"],
                views=s["views"],
                likes=s["likes"],
                comments=s["comments"],
                title=s["title"],
                tags=str(s["tags"]).split("|"),
                category=s["category"],
            )
            start = time.perf_counter()
            row = build_feature_row(
                store,
                "synthetic",
                video_id,
                facts,
                dataset_params(),
                run_dir=f"synthetic/{video_id}/{run_id}",
            )
            mid = time.perf_counter()
            predict_video(row, models, facts)
            end = time.perf_counter()
            feature_ms.append((mid - start) * 1000)
            total_ms.append((end - start) * 1000)
    q = statistics.quantiles(total_ms, n=20)
    return {
        "videos": len(total_ms),
        "models_per_video": len(models),
        "p50_ms": round(statistics.median(total_ms), 1),
        "p95_ms": round(q[18], 1),
        "mean_ms": round(statistics.fmean(total_ms), 1),
        "feature_row_p50_ms": round(statistics.median(feature_ms), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--features", type=int, default=300)
    parser.add_argument("--iterations", type=int, default=200)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--inference-videos", type=int, default=30)
    parser.add_argument("--skip-inference", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "1")

    out: dict = {
        "benchmark": "training",
        "rows": args.rows,
        "features": args.features,
        "iterations": args.iterations,
        "threads": args.threads,
        "cpu_count": os.cpu_count(),
    }
    for algorithm in ("catboost", "lightgbm"):
        out[algorithm] = fit_in_child(algorithm, args.rows, args.features, args.iterations, args.threads)
    out["ratio_fit_time_catboost_over_lightgbm"] = round(
        out["catboost"]["fit_s"] / out["lightgbm"]["fit_s"], 2
    )
    out["ratio_fit_memory_catboost_over_lightgbm"] = round(
        out["catboost"]["fit_peak_rss_increase_mb"] / max(out["lightgbm"]["fit_peak_rss_increase_mb"], 1e-6),
        2,
    )
    if not args.skip_inference:
        out["inference_per_video"] = inference_latency(args.inference_videos, args.threads)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
