"""notebooks/explore.ipynb runs top to bottom against a project where the pipelines ran."""

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from tests.training.tables import ROOT, trained_project


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    path = tmp_path_factory.getbasetemp() / "trained-project"
    path.mkdir(exist_ok=True)
    mp.chdir(path)
    yield trained_project(str(path))
    mp.undo()


def test_explore_notebook_executes(project: Path, monkeypatch):
    monkeypatch.setenv("TRENDFLOW_PROJECT", str(project))
    monkeypatch.setenv("KEDRO_DISABLE_TELEMETRY", "1")
    nb = nbformat.read(ROOT / "notebooks" / "explore.ipynb", as_version=4)
    # The project is loaded the Kedro way: its IPython extension defines `catalog`.
    assert any("%load_ext kedro.ipython" in cell.source for cell in nb.cells if cell.cell_type == "code")
    client = NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(project)}}
    )
    client.execute(env=dict(os.environ))
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "\n".join(str(o.get("text", "")) + str(o.get("data", {}).get("text/plain", "")) for o in outputs)
    assert "dataset fingerprint" in text and "szabo_huberman" in text
    assert any("image/png" in o.get("data", {}) for o in outputs)
