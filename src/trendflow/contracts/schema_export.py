"""Export the contracts as JSON Schema files under docs/schemas/.

Run `python -m trendflow.contracts.schema_export`.

A test fails when a committed schema is out of date, so docs and code cannot drift apart.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from pydantic import BaseModel

from trendflow.contracts.identity import RunIdentity
from trendflow.contracts.manifest import Manifest
from trendflow.contracts.metadata import FramesMetadata
from trendflow.contracts.npz_meta import NpzMeta

SCHEMA_DIR = Path(__file__).resolve().parents[3] / "docs" / "schemas"
EXTRA_MODELS: dict[str, type[BaseModel]] = {}


def state_models() -> dict[str, type[BaseModel]]:
    """The state files of SPEC 10 (dataprocessor/state/models.py), imported late: they build on
    the contracts above."""
    from trendflow.dataprocessor.state.models import (
        GlobalState,
        ProcessorState,
        RunEntry,
        RunState,
        StateEvent,
    )

    return {
        "state_level1_global": GlobalState,
        "state_run_entry": RunEntry,
        "run_state": RunState,
        "state_processor": ProcessorState,
        "state_event": StateEvent,
    }


def contract_models() -> dict[str, type[BaseModel]]:
    models: dict[str, type[BaseModel]] = {
        "run_identity": RunIdentity,
        "frames_metadata": FramesMetadata,
        "npz_meta": NpzMeta,
        "manifest": Manifest,
    }
    models.update(state_models())
    models.update(EXTRA_MODELS)
    return models


def render(model: type[BaseModel]) -> str:
    schema = model.model_json_schema(mode="serialization")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def error_codes_document() -> str:
    from trendflow.contracts.errors import ERROR_CLASSES, HINTS, MAX_RETRIES

    rows = {
        str(code): {
            "class": str(cls),
            "max_retries": MAX_RETRIES.get(code, 0),
            "hint": HINTS[code],
        }
        for code, cls in ERROR_CLASSES.items()
    }
    return json.dumps(rows, indent=2, sort_keys=True) + "\n"


def expected_files() -> dict[str, str]:
    files = {f"{name}.schema.json": render(model) for name, model in contract_models().items()}
    files["error_codes.json"] = error_codes_document()
    return files


def export(directory: Path = SCHEMA_DIR) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in expected_files().items():
        path = directory / name
        path.write_text(text)
        written.append(path)
    return written


if __name__ == "__main__":
    for path in export(Path(sys.argv[1]) if len(sys.argv) > 1 else SCHEMA_DIR):
        print(path)
