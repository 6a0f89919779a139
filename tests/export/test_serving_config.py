"""serving/ configs are what TF Serving parses: models.config as a ModelServerConfig, the compose
file's flags pointing at files that exist. (No Docker engine here: the server itself is not run.)"""
import os

import yaml
from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

SERVING = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "serving")


def test_models_config_parses_with_several_models_and_versions():
    config = model_server_config_pb2.ModelServerConfig()
    with open(os.path.join(SERVING, "models.config")) as f:
        text_format.Parse(f.read(), config)
    models = {c.name: c for c in config.model_config_list.config}
    assert sorted(models) == ["ner", "squad", "sst2"]
    assert list(models["sst2"].model_version_policy.specific.versions) == [1, 2]
    assert dict(models["sst2"].version_labels) == {"stable": 1, "canary": 2}
    assert all(c.base_path == f"/models/{name}" for name, c in models.items())


def test_compose_mounts_the_configs_it_names():
    with open(os.path.join(SERVING, "docker-compose.yml")) as f:
        service = yaml.safe_load(f)["services"]["tfserving"]
    mounts = dict(v.rsplit(":", 1)[0].split(":") for v in service["volumes"])
    flags = dict(c.lstrip("-").split("=", 1) for c in service["command"])
    for flag in ("model_config_file", "batching_parameters_file"):
        local = next(src for src, dst in mounts.items() if dst == flags[flag])
        assert os.path.exists(os.path.join(SERVING, local)), flag
    assert mounts["../exports"] == "/models" and flags["enable_model_warmup"] == "true"
    assert {"8500:8500", "8501:8501"} == set(service["ports"])
    with open(os.path.join(SERVING, "batching_parameters.txt")) as f:
        fields = {line.split()[0] for line in f if line.strip() and not line.startswith("#")}
    assert {"max_batch_size", "batch_timeout_micros", "num_batch_threads"} <= fields
