"""The Hugging Face snapshot source: a Hub repo id, a local Hub-layout folder or a `save_to_disk` folder.

`load_hf_frame(spec)` returns the rows of one split as a pandas DataFrame:

- a folder written by `Dataset.save_to_disk` / `DatasetDict.save_to_disk` (it holds
  `state.json` or `dataset_dict.json`): `datasets.load_from_disk`;
- any other local folder or file: laid out like a Hub dataset repo (README.md with
  `configs`/`data_files`, or parquet / CSV / JSONL files that `datasets` finds by itself):
  `datasets.load_dataset(folder)`;
- `owner/name`: a Hub repo, `datasets.load_dataset(repo_id, name=config, revision=...)` with the
  token from `HF_TOKEN` or the `huggingface` credentials. With `HF_HUB_OFFLINE=1` nothing is asked
  of the network: the dataset comes from the `datasets` cache (a repo loaded before) or from the
  Hub cache (`huggingface_hub.snapshot_download(local_files_only=True)`, e.g. a repo fetched with
  `hf download --repo-type dataset`).

Every failure is a `TrendFlowError` naming the dataset and what is wrong; the token is never part
of a message, a log line or `repr`.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from trendflow.contracts.errors import ErrorCode, TrendFlowError

log = logging.getLogger(__name__)

REPO_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}/[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")
_FILE_BUILDERS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".jsonl": "json", ".json": "json"}
HFKind = Literal["save_to_disk", "folder", "hub"]


@dataclass(frozen=True)
class HFSpec:
    """What to load. `dataset` is a folder/file path or a Hub repo id (`owner/name`)."""

    dataset: str
    revision: str | None = None
    config: str | None = None
    split: str | None = None
    token: str | None = field(default=None, repr=False)

    @classmethod
    def from_options(
        cls, dataset: str, options: dict[str, Any] | None, credentials: dict[str, Any] | None = None
    ) -> HFSpec:
        options = dict(options or {})
        unknown = set(options) - {"revision", "config", "split"}
        if unknown:
            raise TrendFlowError(
                ErrorCode.CONFIG_ERROR,
                f"snapshots_huggingface: unknown load_args {sorted(unknown)}; use revision, config, split",
            )
        return cls(
            dataset=str(dataset),
            revision=_none_if_empty(options.get("revision")),
            config=_none_if_empty(options.get("config")),
            split=_none_if_empty(options.get("split")),
            token=hf_token(credentials),
        )


def _none_if_empty(value: Any) -> str | None:
    return None if value is None or str(value).strip() in ("", "null", "None") else str(value)


def hf_token(credentials: dict[str, Any] | None) -> str | None:
    """The `token` of the `huggingface` credentials, else `HF_TOKEN`, else None (public repos)."""
    token = (credentials or {}).get("token") or os.environ.get("HF_TOKEN")
    return str(token) if token else None


def hub_offline() -> bool:
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE) or os.environ.get("HF_HUB_OFFLINE", "").upper() in (
        "1",
        "ON",
        "YES",
        "TRUE",
    )


def kind_of(dataset: str) -> HFKind:
    path = Path(dataset).expanduser()
    if path.exists():
        if path.is_dir() and ((path / "state.json").is_file() or (path / "dataset_dict.json").is_file()):
            return "save_to_disk"
        return "folder"
    if REPO_ID_RE.fullmatch(dataset) and not dataset.startswith((".", "/")):
        return "hub"
    raise TrendFlowError(
        ErrorCode.SOURCE_NOT_FOUND,
        f"Hugging Face snapshot source {dataset!r}: no such folder or file, "
        "and not a Hub repo id (owner/name)",
    )


def load_hf_frame(spec: HFSpec) -> pd.DataFrame:
    """The rows of the chosen split as a DataFrame (typed errors for every failure)."""
    import datasets

    kind = kind_of(spec.dataset)
    log.info("loading Hugging Face snapshots (%s) from %s", kind, spec.dataset)
    try:
        if kind == "save_to_disk":
            loaded = datasets.load_from_disk(str(Path(spec.dataset).expanduser()))
        elif kind == "folder":
            loaded = _load_folder(Path(spec.dataset).expanduser(), spec.config)
        else:
            loaded = _load_hub(spec)
    except TrendFlowError:
        raise
    except Exception as exc:  # datasets/huggingface_hub raise many types; all become typed errors
        raise _typed_error(exc, spec) from exc
    return _select_split(loaded, spec).to_pandas()


def _load_folder(path: Path, config: str | None) -> Any:
    import datasets

    if path.is_file():
        builder = _FILE_BUILDERS.get(path.suffix.lower())
        if builder is None:
            raise TrendFlowError(
                ErrorCode.INVALID_REQUEST, f"{path}: a snapshot file must be parquet, CSV or JSON lines"
            )
        return datasets.load_dataset(builder, data_files=str(path))
    return datasets.load_dataset(str(path), name=config)


def _load_hub(spec: HFSpec) -> Any:
    import datasets

    if not hub_offline():
        return datasets.load_dataset(spec.dataset, name=spec.config, revision=spec.revision, token=spec.token)
    try:  # a repo loaded before with load_dataset: the `datasets` cache
        return datasets.load_dataset(spec.dataset, name=spec.config, revision=spec.revision)
    except (ConnectionError, FileNotFoundError) as first:
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import LocalEntryNotFoundError

        try:  # a repo in the Hub cache (hf download, snapshot_download)
            folder = snapshot_download(
                spec.dataset, repo_type="dataset", revision=spec.revision, local_files_only=True
            )
        except LocalEntryNotFoundError:
            raise TrendFlowError(
                ErrorCode.SOURCE_NOT_FOUND,
                f"Hub dataset {spec.dataset!r}"
                + (f" at revision {spec.revision!r}" if spec.revision else "")
                + " is not in the local caches and HF_HUB_OFFLINE=1 forbids downloading it; "
                "unset HF_HUB_OFFLINE or fetch it first (`hf download --repo-type dataset "
                f"{spec.dataset}`)",
            ) from first
        log.info("Hub dataset %s from the Hub cache: %s", spec.dataset, folder)
        return datasets.load_dataset(folder, name=spec.config)


def _select_split(loaded: Any, spec: HFSpec) -> Any:
    import datasets

    if not isinstance(loaded, datasets.DatasetDict | dict):
        if spec.split:
            log.info("%s has a single split; split=%s is ignored", spec.dataset, spec.split)
        return loaded
    splits = sorted(loaded)
    if spec.split:
        if spec.split not in loaded:
            raise TrendFlowError(
                ErrorCode.CONFIG_ERROR,
                f"Hugging Face dataset {spec.dataset!r} has no split {spec.split!r}; splits: {splits}",
            )
        return loaded[spec.split]
    if "train" in loaded:
        return loaded["train"]
    if len(splits) == 1:
        return loaded[splits[0]]
    raise TrendFlowError(
        ErrorCode.CONFIG_ERROR,
        f"Hugging Face dataset {spec.dataset!r} has splits {splits} and none is `train`; "
        "set load_args.split on snapshots_huggingface",
    )


def _typed_error(exc: BaseException, spec: HFSpec) -> TrendFlowError:
    """Map datasets/huggingface_hub failures onto the taxonomy, naming the dataset."""
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError, RevisionNotFoundError

    chain: list[BaseException] = []
    node: BaseException | None = exc
    while node is not None and node not in chain and len(chain) < 8:
        chain.append(node)
        node = node.__cause__ or node.__context__
    name = spec.dataset
    # `datasets` re-raises the Hub's errors as DatasetNotFoundError `from None`: its message tells
    text = str(exc)
    for item in chain:
        if isinstance(item, GatedRepoError) or "is a gated dataset" in text:
            how = "the token given has no access" if spec.token else "no token was given"
            return TrendFlowError(
                ErrorCode.CONFIG_ERROR,
                f"Hub dataset {name!r} is gated and {how}: accept its conditions on the Hub and set "
                "HF_TOKEN (or `token` in the `huggingface` credentials of conf/local/credentials.yml)",
            )
        if isinstance(item, RevisionNotFoundError) or re.search(r"Revision '.*' doesn't exist", text):
            return TrendFlowError(
                ErrorCode.SOURCE_NOT_FOUND, f"Hub dataset {name!r} has no revision {spec.revision!r}"
            )
        if isinstance(item, RepositoryNotFoundError) or "doesn't exist on the Hub" in text:
            return TrendFlowError(
                ErrorCode.SOURCE_NOT_FOUND,
                f"Hub dataset {name!r} does not exist or is private"
                + ("" if spec.token else " (no token given: set HF_TOKEN for a private repo)"),
            )
    message = str(exc)
    if spec.config and ("BuilderConfig" in message or "config" in message.lower()):
        return TrendFlowError(ErrorCode.CONFIG_ERROR, f"Hugging Face dataset {name!r}: {message}")
    if type(exc).__name__ in ("DatasetNotFoundError", "DataFilesNotFoundError", "EmptyDatasetError"):
        return TrendFlowError(ErrorCode.SOURCE_NOT_FOUND, f"Hugging Face dataset {name!r}: {message}")
    if isinstance(exc, ConnectionError | TimeoutError):
        return TrendFlowError(
            ErrorCode.DOWNLOAD_FAILED,
            f"Hugging Face dataset {name!r}: the Hub could not be reached ({message}); "
            "set HF_HUB_OFFLINE=1 to use the local cache",
        )
    return TrendFlowError(
        ErrorCode.INVALID_REQUEST, f"Hugging Face dataset {name!r}: {type(exc).__name__}: {message}"
    )


def frame_fingerprint(frame: pd.DataFrame) -> str:
    """sha256 of a loaded frame's columns and values (the Hub case has no files of its own to hash)."""
    digest = hashlib.sha256(",".join(map(str, frame.columns)).encode())
    digest.update(pd.util.hash_pandas_object(frame.astype("string"), index=False).to_numpy().tobytes())
    return digest.hexdigest()
