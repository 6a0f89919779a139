"""The strategy layer: --strategy/--tpu flags -> a tf.distribute.Strategy, and batch math.

Every training and evaluation path builds its model and optimizer under ``strategy.scope()``
and feeds datasets through ``distribute_dataset`` so one code path serves CPU, GPUs, several
workers and TPUs.
"""
import json
import os

import tensorflow as tf

from bert_tf.errors import UserError

STRATEGIES = ("auto", "cpu", "gpu", "mirrored", "multi_worker", "tpu")


def _connect_tpu(tpu, zone=None, project=None):
    address = tpu or "local"
    try:
        if address == "local":
            resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu="local")
        else:
            resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=address, zone=zone, project=project)
        if address != "local":
            tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
    except (ValueError, RuntimeError, tf.errors.OpError) as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise UserError(
            f"no TPU found at --tpu={address} ({first_line}): on Colab pick a TPU runtime; on a TPU VM "
            "use --tpu=local; otherwise pass the TPU name or grpc:// address, or use --strategy=auto") from None
    return tf.distribute.TPUStrategy(resolver)


def _check_tf_config():
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        raise UserError("--strategy=multi_worker needs TF_CONFIG set on every worker: see README, 'Multi-worker'")
    try:
        config = json.loads(raw)
        workers = config["cluster"]["worker"]
        task = config["task"]
        if task["type"] not in ("worker", "chief") or not isinstance(task["index"], int):
            raise ValueError("task needs type worker/chief and an integer index")
        if not workers:
            raise ValueError("cluster.worker is empty")
    except (ValueError, KeyError, TypeError) as error:
        raise UserError(f"TF_CONFIG is malformed ({error}): expected "
                        '{"cluster": {"worker": ["host:port", ...]}, "task": {"type": "worker", "index": 0}}') from None


def get_strategy(name="auto", tpu=None, num_gpus=None, paths=None, tpu_zone=None, gcp_project=None):
    """Returns the strategy named by ``--strategy``.

    ``auto`` picks a TPU when ``--tpu`` is given, then all visible GPUs, then the CPU. Call it
    before any other TensorFlow op: multi-worker collectives are configured at start-up.
    ``paths`` ({flag: value}) are checked to be on GCS when a remote TPU is used.
    """
    if name not in STRATEGIES:
        raise UserError(f"--strategy={name} is unknown: use one of {', '.join(STRATEGIES)}")
    # Physical, not logical: listing logical devices starts the runtime, after which
    # MultiWorkerMirroredStrategy can no longer configure its collectives.
    gpus = tf.config.list_physical_devices("GPU")
    if num_gpus is not None and num_gpus > len(gpus):
        raise UserError(f"--num_gpus={num_gpus} but {len(gpus)} GPU(s) are visible: lower --num_gpus or check CUDA")
    if name == "auto":
        name = "tpu" if tpu else ("mirrored" if len(gpus) > 1 else ("gpu" if gpus else "cpu"))
    if name == "tpu":
        check_tpu_paths(tpu, paths or {})
        return _connect_tpu(tpu, tpu_zone, gcp_project)
    if name == "cpu":
        # With no GPU to keep ops off, TensorFlow's default (no-op) strategy is the one-CPU strategy:
        # OneDeviceStrategy's distributed iterator cost a 2-core host 0.5 s of a 1.2 s packed
        # fine-tuning step (docs/finetuning_results.md, "Sequence packing").
        return tf.distribute.get_strategy() if not gpus else tf.distribute.OneDeviceStrategy("/cpu:0")
    if name == "gpu":
        if not gpus:
            raise UserError("--strategy=gpu but no GPU is visible: install the [gpu] extra or use --strategy=cpu")
        return tf.distribute.OneDeviceStrategy("/gpu:0")
    if name == "mirrored":
        devices = [d.name for d in tf.config.list_logical_devices("GPU")[:num_gpus]] if gpus else None
        return tf.distribute.MirroredStrategy(devices=devices)
    _check_tf_config()
    return tf.distribute.MultiWorkerMirroredStrategy()


def check_jit_compile(strategy, jit_compile):
    """Refuses XLA with several CPU replicas, which TF 2.21 cannot run (resources on another device)."""
    if not jit_compile or strategy.num_replicas_in_sync < 2 or isinstance(strategy, tf.distribute.TPUStrategy):
        return
    devices = getattr(strategy.extended, "worker_devices", ())
    if devices and all("CPU" in d.upper() for d in devices):
        raise UserError(f"--jit_compile with {strategy.num_replicas_in_sync} CPU replicas fails in TensorFlow "
                        "(XLA cannot read a variable placed on another CPU device): drop --jit_compile, or use "
                        "one device (--strategy=cpu), GPUs or a TPU")


def check_tpu_paths(tpu, paths):
    """A remote TPU (not ``--tpu=local``) reads and writes only through GCS, never the local disk.

    ``paths`` maps flag names to values; the first local one is an error naming it.
    """
    if not tpu or tpu == "local":
        return
    for flag, value in paths.items():
        for path in str(value or "").split(","):
            if path.strip() and not path.strip().startswith("gs://"):
                raise UserError(f"--{flag}={path.strip()} is a local path but --tpu={tpu} is a remote TPU: TPUs "
                                "read from GCS: use gs:// for --input_file and --output_dir (or run on a TPU VM "
                                "with --tpu=local)")


def _worker_devices(strategy):
    """The devices the replicas run on; the default strategy (one CPU) keeps no such list."""
    try:
        return strategy.extended.worker_devices
    except (AttributeError, RuntimeError):
        return ("CPU:0",) if strategy.num_replicas_in_sync == 1 else ()


def describe(strategy, global_batch_size, mixed_precision="no"):
    """One start-up line: strategy, replicas, their devices, precision, global and per-replica batch."""
    devices = _worker_devices(strategy)
    names = sorted({d.split("device:")[-1] for d in devices}) if devices else ["?"]
    replicas = strategy.num_replicas_in_sync
    workers = num_workers(strategy)
    precision = {"no": "float32", "fp16": "mixed float16", "bf16": "mixed bfloat16"}.get(mixed_precision,
                                                                                       mixed_precision)
    # The public class name (MultiWorkerMirroredStrategy's own type is CollectiveAllReduceStrategy).
    kinds = (("TPUStrategy", tf.distribute.TPUStrategy),
             ("MultiWorkerMirroredStrategy", tf.distribute.MultiWorkerMirroredStrategy),
             ("MirroredStrategy", tf.distribute.MirroredStrategy), ("OneDeviceStrategy", tf.distribute.OneDeviceStrategy))
    kind = next((name for name, k in kinds if isinstance(strategy, k)), "default strategy")
    return (f"{kind}: {replicas} replica{'s' if replicas != 1 else ''}"
            + (f" on {workers} workers" if workers > 1 else "")
            + f" ({', '.join(names)}{' per worker' if workers > 1 else ''}), precision {precision}, batch "
            f"{global_batch_size} global = {global_batch_size // max(replicas, 1)} per replica")


def per_replica_batch_size(strategy, global_batch_size, flag="--train_batch_size"):
    if global_batch_size <= 0:
        raise UserError(f"{flag}={global_batch_size} must be positive")
    replicas = strategy.num_replicas_in_sync
    if global_batch_size % replicas:
        raise UserError(f"{flag}={global_batch_size} is not divisible by the {replicas} replicas: "
                        f"use a multiple of {replicas}")
    return global_batch_size // replicas


def is_chief(strategy):
    """Only the chief writes checkpoints, exports and results under multi-worker training."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or isinstance(strategy, tf.distribute.TPUStrategy):
        return True
    task_type, task_id = resolver.task_type, resolver.task_id
    # With a "chief" task in the cluster, worker 0 is an ordinary worker.
    has_chief = bool(resolver.cluster_spec().as_dict().get("chief"))
    return task_type in (None, "chief") or (task_type == "worker" and task_id == 0 and not has_chief)


def num_workers(strategy):
    """How many worker processes train together (1 unless multi-worker)."""
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return 1
    cluster = strategy.cluster_resolver.cluster_spec().as_dict()
    return max(1, sum(len(cluster.get(kind, [])) for kind in ("chief", "worker")))


def distribute_dataset(strategy, dataset_fn):
    """Builds one input pipeline per worker; ``dataset_fn(input_context)`` shards and batches."""
    return strategy.distribute_datasets_from_function(dataset_fn)
