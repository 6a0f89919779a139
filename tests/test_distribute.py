import pytest
import tensorflow as tf

from bert_tf import distribute
from bert_tf.errors import UserError

GPUS = len(tf.config.list_physical_devices("GPU"))
# What these tests expect of a machine without GPUs; a GPU machine runs the branches that name GPUs.
no_gpu = pytest.mark.skipif(GPUS > 0, reason="expects a machine without GPUs")
with_gpu = pytest.mark.skipif(GPUS == 0, reason="needs a GPU")


@no_gpu
def test_cpu_without_gpus_gives_the_default_strategy():
    # OneDeviceStrategy's distributed iterator made a packed fine-tuning step 1.7x slower on 2 cores.
    for name in ("cpu", "auto"):
        strategy = distribute.get_strategy(name)
        assert strategy is tf.distribute.get_strategy()
        assert strategy.num_replicas_in_sync == 1
        assert distribute.describe(strategy, 32).startswith("default strategy: 1 replica (CPU:0), precision float32")


@with_gpu
def test_cpu_beside_gpus_pins_the_cpu():
    strategy = distribute.get_strategy("cpu")
    assert isinstance(strategy, tf.distribute.OneDeviceStrategy)
    assert strategy.num_replicas_in_sync == 1


@with_gpu
def test_auto_with_gpus_uses_every_gpu():
    strategy = distribute.get_strategy("auto")
    assert strategy.num_replicas_in_sync == GPUS


@no_gpu
def test_mirrored_without_gpus_mirrors_the_cpu():
    strategy = distribute.get_strategy("mirrored")
    assert isinstance(strategy, tf.distribute.MirroredStrategy)
    assert strategy.num_replicas_in_sync == 1


@pytest.mark.parametrize("name, message", [
    pytest.param("gpu", "no GPU is visible", marks=no_gpu),
    ("nonsense", "--strategy=nonsense is unknown"),
])
def test_unusable_strategies_are_user_errors(name, message):
    with pytest.raises(UserError, match=message):
        distribute.get_strategy(name)


def test_tpu_unreachable_names_the_address_and_the_fix():
    with pytest.raises(UserError) as error:
        distribute.get_strategy("tpu", tpu="local")
    message = str(error.value)
    assert message.startswith("no TPU found at --tpu=local") and "Colab" in message and "\n" not in message


def test_more_gpus_than_present_is_refused():
    with pytest.raises(UserError, match=f"--num_gpus={GPUS + 2} but {GPUS} GPU"):
        distribute.get_strategy("auto", num_gpus=GPUS + 2)


def test_multi_worker_needs_a_well_formed_tf_config(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(UserError, match="needs TF_CONFIG"):
        distribute.get_strategy("multi_worker")
    monkeypatch.setenv("TF_CONFIG", '{"cluster": {}}')
    with pytest.raises(UserError, match="TF_CONFIG is malformed"):
        distribute.get_strategy("multi_worker")


def test_per_replica_batch_size_divides_or_refuses():
    strategy = distribute.get_strategy("cpu")
    assert distribute.per_replica_batch_size(strategy, 32) == 32
    with pytest.raises(UserError, match="must be positive"):
        distribute.per_replica_batch_size(strategy, 0)
    assert distribute.is_chief(strategy)


def test_describe_is_one_start_up_line():
    assert distribute.describe(tf.distribute.OneDeviceStrategy("/cpu:0"), 32, "bf16") == (
        "OneDeviceStrategy: 1 replica (CPU:0), precision mixed bfloat16, batch 32 global = 32 per replica")
    if not tf.config.list_physical_devices("GPU"):
        # Without GPUs, --strategy=mirrored runs one replica on the CPU.
        assert distribute.describe(distribute.get_strategy("mirrored"), 16) == (
            "MirroredStrategy: 1 replica (CPU:0), precision float32, batch 16 global = 16 per replica")
