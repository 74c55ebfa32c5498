"""Same-process timing of `fit_all` on a training table: main's former training defaults
(`before`: 2 threads per model, tasks one at a time, 7 algorithms) vs the current conf/base
(`after`: 1 thread per model, n_jobs tasks at once, the shorter list). Both fit the same tasks
(every target at 14d, the configured splits) one after the other; wall time, CPU time of all
threads and the load average are printed per configuration (docs/training.md, "Default training
speed").

    python benchmarks/training_speed.py data/05_model_input/training_table.parquet \
        conf/base/parameters_training.yml after,before

One JSON object on stdout, progress on stderr.
"""

import os
import sys

# Run as a script, benchmarks/ is sys.path[0]: a sibling named like a stdlib module (queue.py)
# would shadow it for every library imported below.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _HERE]

import json  # noqa: E402
import time  # noqa: E402

import pandas as pd  # noqa: E402
import yaml  # noqa: E402

from trendflow.training.config import TrainingParams  # noqa: E402
from trendflow.training.features import select_features  # noqa: E402
from trendflow.training.train import fit_all  # noqa: E402

MAIN_ALGORITHMS = [
    "catboost",
    "lightgbm",
    "catboost_sh",
    "lightgbm_sh",
    "catboost_sh_mono",
    "lightgbm_sh_mono",
    "blend",
]


def main() -> None:
    table = pd.read_parquet(sys.argv[1])
    with open(sys.argv[2]) as handle:
        base = {**yaml.safe_load(handle)["training"], "horizons": ["14d"]}
    configs = {
        "before": {**base, "threads": 2, "n_jobs": 1, "algorithms": MAIN_ALGORITHMS},
        "after": base,
    }
    out = {}
    for name in (sys.argv[3] if len(sys.argv) > 3 else "after,before").split(","):
        params = TrainingParams(**configs[name])
        spec = select_features(table, params)
        load, wall, cpu = os.getloadavg()[0], time.perf_counter(), time.process_time()
        result = fit_all(table, spec, params)
        out[name] = {
            "wall_s": round(time.perf_counter() - wall, 1),
            "cpu_s": round(time.process_time() - cpu, 1),
            "load_start": round(load, 1),
            "load_end": round(os.getloadavg()[0], 1),
            "tasks": len(result.tasks),
            "algorithms": params.algorithms,
            "threads": params.threads,
            "jobs": params.jobs(len(result.tasks)),
        }
        print(name, out[name], file=sys.stderr, flush=True)
    if {"before", "after"} <= out.keys():
        out["wall_ratio"] = round(out["before"]["wall_s"] / out["after"]["wall_s"], 2)
        out["cpu_ratio"] = round(out["before"]["cpu_s"] / out["after"]["cpu_s"], 2)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
