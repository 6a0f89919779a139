"""The Colab notebook and docs/distributed.md are valid and use only flags the scripts define."""
import json
import os
import re

from absl import flags

from bert_tf.jobs import classifier, pretraining

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOK = os.path.join(REPO, "notebooks", "colab_tpu_finetune.ipynb")
DOC = os.path.join(REPO, "docs", "distributed.md")


def _defined_flags(script):
    jobs = {"run_classifier.py": classifier.define_flags, "run_pretraining.py": pretraining.define_flags}
    if script in jobs:
        fv = flags.FlagValues()
        jobs[script](fv)
        return set(fv)
    with open(os.path.join(REPO, "tools", script)) as f:
        return set(re.findall(r"DEFINE_\w+\(\s*\"(\w+)\"", f.read()))


def _commands(text):
    """(script, [flag names]) for every `python tools/X.py ...` command, continuation lines joined."""
    joined = re.sub(r"\\\s*\n\s*", " ", text)
    found = []
    for match in re.finditer(r"python tools/(\w+\.py)([^\n]*)", joined):
        found.append((match.group(1), re.findall(r"--(\w+)", match.group(2))))
    return found


def test_notebook_is_valid_nbformat_4():
    with open(NOTEBOOK) as f:
        notebook = json.load(f)
    assert notebook["nbformat"] == 4 and notebook["nbformat_minor"] >= 4
    assert notebook["metadata"]["kernelspec"]["name"] == "python3"
    ids = [cell["id"] for cell in notebook["cells"]]
    assert len(ids) == len(set(ids))
    for cell in notebook["cells"]:
        assert cell["cell_type"] in ("markdown", "code")
        assert isinstance(cell["source"], list) and all(isinstance(line, str) for line in cell["source"])
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None
    # One parameters cell (papermill's tag), naming the project source once, with a default.
    parameters = [c for c in notebook["cells"] if "parameters" in c["metadata"].get("tags", [])]
    assert len(parameters) == 1
    assert 'BERT_TF_SOURCE = "/content/drive/MyDrive/bert_tf"' in "".join(parameters[0]["source"])
    code = "\n".join("".join(c["source"]) for c in notebook["cells"] if c["cell_type"] == "code")
    assert code.count("BERT_TF_SOURCE = ") == 1
    assert '"--strategy=tpu", "--tpu=local"' in code and "--init_checkpoint=hub:google-bert/bert-base-uncased" in code
    assert "drive.mount(" in code and "exporter.export_saved_model(" in code


def test_every_flag_in_the_notebook_exists():
    with open(NOTEBOOK) as f:
        cells = json.load(f)["cells"]
    code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
    names = set(re.findall(r'"--(\w+)', code)) - {"python"}
    assert len(names) >= 15
    unknown = sorted(names - _defined_flags("run_classifier.py"))
    assert not unknown, f"run_classifier has no flag(s) {unknown}"


def test_every_flag_in_the_doc_recipes_exists():
    with open(DOC) as f:
        commands = _commands(f.read())
    assert len(commands) >= 3
    for script, names in commands:
        unknown = sorted(set(names) - _defined_flags(script))
        assert not unknown, f"distributed.md: {script} has no flag(s) {unknown}"
