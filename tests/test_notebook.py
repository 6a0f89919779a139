"""notebooks/colab_tpu_finetune.ipynb executed headless, top to bottom, as Colab would run it.

Only the parameters cell's values change (injected after it, as papermill does): the source is
this checkout, outputs go to a temporary folder, SMOKE_TEST picks the tiny preset, and INSTALL is
off because the test environment is the installed one. No TPU here, so the notebook must say so
and fall back to the CPU; no Colab, so Drive is not mounted.
"""
import json
import math
import os
import sys

import nbformat
from nbclient import NotebookClient

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOK = os.path.join(REPO, "notebooks", "colab_tpu_finetune.ipynb")


def _text(cell):
    return "".join(o.get("text", "") for o in cell.outputs if o.get("name") == "stdout")


def test_notebook_runs_on_cpu_with_the_tiny_preset(tmp_path, monkeypatch):
    # A kernel of this interpreter (the one with bert_tf installed), whatever kernels the machine has.
    spec = tmp_path / "jupyter" / "kernels" / "bert_tf_test"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "bert_tf test", "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    at = next(i for i, c in enumerate(notebook.cells) if "parameters" in c.metadata.get("tags", []))
    notebook.cells.insert(at + 1, nbformat.v4.new_code_cell(
        f"BERT_TF_SOURCE = {REPO!r}\nOUTPUT_ROOT = {str(tmp_path)!r}\nSMOKE_TEST = True\nINSTALL = False",
        id="injected-parameters"))
    NotebookClient(notebook, timeout=600, kernel_name="bert_tf_test",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    cells = {c.get("id"): c for c in notebook.cells}

    assert "No TPU on this machine: training on the CPU" in _text(cells["accelerator"])
    assert "Drive" not in _text(cells["storage"])  # nothing mounted off Colab
    train_log = _text(cells["train"])
    assert "--strategy=cpu --bert_config_file=tiny" in train_log and "train: step 8," in train_log

    with open(tmp_path / "runs" / "sst2" / "eval_results.json") as f:
        results = json.load(f)
    assert results["num_examples"] == 852  # every sentence of data/sentiment/dev.tsv
    # 8 steps of a fresh 2-layer model: near chance, with a loss near ln 2, on balanced labels.
    assert 0.4 <= results["accuracy"] <= 0.7 and abs(results["loss"] - math.log(2)) < 0.15

    version = tmp_path / "exports" / "sst2" / "1"
    assert (version / "saved_model.pb").is_file() and (version / "assets.extra" / "bert_tf_export.json").is_file()
    lines = [line for line in _text(cells["export"]).splitlines() if not line.startswith("INFO:")]
    assert lines[0] == f"exported {version}"
    # Both texts came back through the loaded export: label, probability, text.
    rows = [line.split("\t") for line in lines[1:]]
    assert [r[2] for r in rows] == ["a gripping, funny film", "dull and far too long"]
    assert all(r[0] in ("0", "1") and 0.5 <= float(r[1]) <= 1.0 for r in rows)
