"""serving/ as shipped: what TF Serving parses, what the compose file mounts, what the docs export,
and that the pinned server release registers every op of every export. (No Docker engine here: the
server itself is not run; docs/serving.md says what was and was not tested.)"""
import os
import re
import runpy

import pytest
import yaml
from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from tests.export.conftest import SERVING_SAFE_OPS, graph_ops

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SERVING = os.path.join(REPO, "serving")
DOCS = [os.path.join(REPO, "README.md"), os.path.join(REPO, "docs", "serving.md")]
TF_OPS = runpy.run_path(os.path.join(SERVING, "tf_ops.py"))


def _read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def _models():
    config = model_server_config_pb2.ModelServerConfig()
    text_format.Parse(_read(os.path.join(SERVING, "models.config")), config)
    return {c.name: c for c in config.model_config_list.config}


def _service():
    return yaml.safe_load(_read(os.path.join(SERVING, "docker-compose.yml")))["services"]["tfserving"]


def _mounts():
    """{host path relative to the repository root: container path}."""
    return {os.path.normpath(os.path.join("serving", v.split(":")[0])): v.split(":")[1] for v in _service()["volumes"]}


def test_models_config_lists_one_model_serving_its_latest_version():
    models = _models()
    assert sorted(models) == ["sst2"]
    assert models["sst2"].base_path == "/models/sst2"
    assert models["sst2"].model_version_policy.latest.num_versions == 1


def test_compose_mounts_the_configs_it_names():
    service = _service()
    mounts = _mounts()
    flags = dict(c.lstrip("-").split("=", 1) for c in service["command"])
    for flag in ("model_config_file", "batching_parameters_file"):
        local = next(src for src, dst in mounts.items() if dst == flags[flag])
        assert os.path.isfile(os.path.join(REPO, local)), flag
    assert mounts["exports"] == "/models" and flags["enable_model_warmup"] == "true"
    assert {"8500:8500", "8501:8501"} == set(service["ports"])
    with open(os.path.join(SERVING, "batching_parameters.txt")) as f:
        fields = {line.split()[0] for line in f if line.strip() and not line.startswith("#")}
    assert {"max_batch_size", "batch_timeout_micros", "num_batch_threads"} <= fields


def test_every_served_model_is_exported_by_the_docs_where_the_compose_file_mounts():
    served_root = next(src for src, dst in _mounts().items() if dst == "/models")
    exported = {}
    for path in DOCS:
        joined = re.sub(r"\\\s*\n\s*", " ", _read(path))
        for match in re.finditer(r"tools/export_savedmodel\.py[^\n]*--export_dir=(\S+)", joined):
            exported.setdefault(os.path.basename(path), set()).add(match.group(1))
    # README and docs/serving.md both export every served model into the mounted folder.
    for doc in ("README.md", "serving.md"):
        for name in _models():
            assert f"{served_root}/{name}" in exported[doc], (doc, name, exported[doc])
        assert all(d.startswith(served_root + "/") for d in exported[doc]), exported[doc]
    # The single-model docker run mounts the same folder and runs the same image.
    serving_md = _read(DOCS[1])
    assert f'-v "$PWD/{served_root}/sst2:/models/sst2"' in serving_md
    assert set(re.findall(r"tensorflow/serving:[\w.-]+", serving_md)) == {_service()["image"]}


def test_outputs_are_ignored_by_git():
    ignored = set(_read(os.path.join(REPO, ".gitignore")).split())
    assert {"/exports/", "/runs/", "/demo_output/"} <= ignored


def test_op_list_belongs_to_the_pinned_server():
    """The list is the image's release's; an op is listed only where that release's generated
    wrappers build it, so a listed op is a registered op (a miss can only fail the test below)."""
    release = _service()["image"].split(":")[1]
    listed = TF_OPS["read_list"](os.path.join(SERVING, f"tensorflow-{release}-ops.txt"))
    import tensorflow as tf

    installed = TF_OPS["registered_ops"](os.path.dirname(tf.__file__))
    assert len(listed) > 1400
    # What the exporting TensorFlow (2.20 or 2.21, setup.py) has beyond the server: only DecodeJxl.
    assert installed - listed <= {"DecodeJxl"}


@pytest.mark.parametrize("task", ["classification", "regression", "tagging", "squad"])
def test_exports_use_only_ops_the_pinned_server_registers(exports, task):
    release = _service()["image"].split(":")[1]
    listed = TF_OPS["read_list"](os.path.join(SERVING, f"tensorflow-{release}-ops.txt"))
    ops = graph_ops(exports[task])
    assert len(ops) > 50
    assert ops - listed <= SERVING_SAFE_OPS, sorted(ops - listed - SERVING_SAFE_OPS)
