"""Load a Hugging Face snapshot source in a fresh process and print the outcome as JSON.

`huggingface_hub` and `datasets` read HF_HUB_OFFLINE, HF_ENDPOINT and the cache folders when they
are imported, so the tests run each environment in its own process:

    python tests/dataset/hf_probe.py '{"filepath": "acme/snaps", "load_args": {}, ...}'
"""

from __future__ import annotations

import json
import sys

from trendflow.contracts.errors import TrendFlowError
from trendflow.dataset.kedro_datasets import SnapshotSourceDataset


def main() -> None:
    outcomes = []
    for case in json.loads(sys.argv[1]):
        ds = SnapshotSourceDataset(kind="huggingface", **case)
        try:
            frame, report = ds.load().read()
            outcomes.append(
                {
                    "rows": int(report["rows_out"]),
                    "videos": sorted(set(frame["video_id"])),
                    "fingerprint": ds.load().fingerprint(),
                    "describe": repr(ds),
                }
            )
        except TrendFlowError as exc:
            outcomes.append({"error_code": str(exc.code), "message": exc.message, "describe": repr(ds)})
    print(json.dumps(outcomes))


if __name__ == "__main__":
    main()
