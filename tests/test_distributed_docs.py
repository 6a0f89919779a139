"""The Colab notebook and docs/distributed.md are valid and use only flags the scripts define."""
import json
import os
import re

import pytest
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
    source = "".join("".join(cell["source"]) for cell in notebook["cells"])
    # The steps the issue asks for: install the tpu extra, connect with tpu='local', fine-tune
    # from a hub checkpoint on the TPU, export.
    assert "[tpu]" in source and "TPUClusterResolver(tpu='local')" in source
    assert "--strategy=tpu --tpu=local" in source and "--init_checkpoint=hub:google-bert/bert-base-uncased" in source
    assert "tools/export_savedmodel.py" in source


@pytest.mark.parametrize("path", [NOTEBOOK, DOC])
def test_every_flag_in_the_recipes_exists(path):
    with open(path) as f:
        text = f.read()
    if path.endswith(".ipynb"):
        text = "\n".join("".join(cell["source"]) for cell in json.loads(text)["cells"])
    commands = _commands(text)
    assert len(commands) >= 3
    for script, names in commands:
        unknown = sorted(set(names) - _defined_flags(script))
        assert not unknown, f"{os.path.basename(path)}: {script} has no flag(s) {unknown}"
