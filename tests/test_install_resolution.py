"""The documented TPU install resolves to ONE distribution of the `tensorflow` import package.

NETWORK: these tests resolve against PyPI (uv pip compile into a fresh cache, ~25 s in all; with
--runslow also pip's own dry run, ~2 min). Where PyPI cannot be reached they are skipped with that
reason; everywhere else they run in the default suite.

tensorflow-tpu and tensorflow both ship the `tensorflow/` import package, and only tensorflow-tpu's
wheel loads libtpu. tf-keras, tensorflow-text, tensorflow-serving-api and bert_tf itself require
`tensorflow` by name, and pip has no way to leave a requirement out, so `pip install '.[tpu]'`
installs both (which file wins is install order). The documented install leaves `tensorflow` out
with uv's --excludes; this test resolves exactly that command for Colab's Python (3.12) and the
Python a Cloud TPU VM venv uses (3.11; the VM image's own 3.10 is below bert_tf's floor).
"""
import json
import os
import re
import socket
import subprocess
import sys
import tomllib

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOC = os.path.join(REPO, "docs", "distributed.md")
NOTEBOOK = os.path.join(REPO, "notebooks", "colab_tpu_finetune.ipynb")

# Every distribution on PyPI that installs the `tensorflow` import package.
TENSORFLOW_PROVIDERS = {
    "tensorflow", "tensorflow-tpu", "tensorflow-cpu", "tensorflow-gpu", "tensorflow-intel", "tensorflow-macos",
    "tensorflow-aarch64", "tensorflow-cpu-aws", "intel-tensorflow", "tf-nightly", "tf-nightly-tpu",
    "tf-nightly-cpu", "tf-nightly-gpu", "tf-nightly-intel",
}
# The exact text users run (docs/distributed.md, the notebook); the test runs its resolution.
EXCLUDES_LINE = "echo tensorflow > /tmp/no-tensorflow.txt"
INSTALL_FLAGS = "--excludes /tmp/no-tensorflow.txt"


def _pypi_reachable():
    try:
        socket.create_connection(("pypi.org", 443), timeout=5).close()
        return True
    except OSError:
        return False


network = pytest.mark.skipif(not _pypi_reachable(), reason="NETWORK: pypi.org unreachable")


@pytest.fixture(scope="module")
def uv_cache(tmp_path_factory):
    """A cache that starts empty (nothing from earlier runs) and is shared by this module's resolutions."""
    return str(tmp_path_factory.mktemp("uv-cache"))


def _resolve(tmp_path, uv_cache, python_version, exclude_tensorflow=True):
    """{name: version} that uv resolves for `.[tpu]` on x86_64 Linux (glibc 2.35, as on Colab and TPU VMs)."""
    from uv import find_uv_bin

    lock = tmp_path / f"pylock.py{python_version.replace('.', '')}.toml"
    command = [find_uv_bin(), "pip", "compile", "--quiet", "--no-config", "--cache-dir", uv_cache, "--no-python-downloads",
               "--python-version", python_version, "--python-platform", "x86_64-manylinux_2_35",
               "--format", "pylock.toml", "-o", str(lock), "setup.py", "--extra", "tpu"]
    if exclude_tensorflow:
        excludes = tmp_path / "no-tensorflow.txt"
        excludes.write_text("tensorflow\n")
        command[3:3] = ["--excludes", str(excludes)]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr[-3000:]
    with open(lock, "rb") as f:
        return {p["name"]: p.get("version") for p in tomllib.load(f)["packages"]}


@network
@pytest.mark.parametrize("python_version", ["3.12", "3.11"])
def test_documented_tpu_install_has_one_tensorflow_and_libtpu(tmp_path, uv_cache, python_version):
    resolved = _resolve(tmp_path, uv_cache, python_version)
    assert {name: resolved[name] for name in TENSORFLOW_PROVIDERS & set(resolved)} == {"tensorflow-tpu": "2.20.0"}
    assert resolved["libtpu"] == "0.0.14"
    # Packages with compiled code built against one TensorFlow release must match tensorflow-tpu's.
    for name in ("tensorflow-text", "tf-keras", "tensorboard", "tensorflow-serving-api"):
        assert resolved[name].startswith("2.20."), (name, resolved[name])
    assert resolved["transformers"].startswith("4.")  # bert_tf's own requirements are in


@network
@pytest.mark.slow  # ~2 minutes: pip downloads whole wheels where PyPI serves no separate metadata
def test_plain_pip_resolves_both_tensorflow_wheels(tmp_path):
    """Why the documented command uses uv's --excludes: pip's own dry run of `.[tpu]` (for this
    interpreter) installs both distributions of the `tensorflow` import package."""
    report = tmp_path / "report.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env["PIP_CONFIG_FILE"] = os.devnull  # PyPI only, whatever this machine's pip configuration says
    result = subprocess.run([sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--no-cache-dir",
                             "--quiet", "--report", str(report), ".[tpu]"], cwd=REPO, env=env, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    with open(report) as f:
        resolved = {i["metadata"]["name"].lower().replace("_", "-"): i["metadata"]["version"]
                    for i in json.load(f)["install"]}
    assert {name: resolved[name] for name in TENSORFLOW_PROVIDERS & set(resolved)} == \
        {"tensorflow": "2.20.0", "tensorflow-tpu": "2.20.0"}


@pytest.mark.parametrize("path", [DOC, NOTEBOOK])
def test_docs_and_notebook_use_the_tested_command(path):
    with open(path) as f:
        text = f.read().replace('\\"', '"')
    assert EXCLUDES_LINE in text and INSTALL_FLAGS in text and "[tpu]" in text
    # No command installs the tpu extra without the exclusion.
    installs = [line for line in text.replace('",', "\n").splitlines() if re.search(r"pip install .*\[tpu\]", line)]
    assert installs and all(INSTALL_FLAGS in line for line in installs), installs
