"""Runs classifier (or, with --job=pretraining, pretraining) jobs in a fresh process whose CPU is split into logical devices.

Logical devices must be configured before TensorFlow initialises its devices, which pytest's
process has long done, so tests start this script as a subprocess:

  python tests/training/strategy_runner.py --cpus=2 --report=out.json -- FLAGS... -- FLAGS...

Each ``--``-separated flag set is one ``classifier.run``; the report lists, per run, the final
checkpoint's variables and the in-memory model weights (as a .npz next to the report), the
training history and the evaluation results.
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
import bert_tf  # noqa: E402,F401  (must precede TensorFlow)
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402


def _split_cpu(count):
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * count)


def _checkpoint_arrays(output_dir):
    reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(os.path.join(output_dir, "checkpoints")))
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()
            if not name.startswith("_CHECKPOINTABLE_OBJECT_GRAPH")}


def main(argv):
    options, runs, current = {}, [], None
    for arg in argv:
        if arg == "--":
            current = []
            runs.append(current)
        elif current is None:
            key, _, value = arg.lstrip("-").partition("=")
            options[key] = value
        else:
            current.append(arg)
    if int(options.get("cpus", "1")) > 1:
        _split_cpu(int(options["cpus"]))
    if options.get("determinism") == "1":
        tf.config.experimental.enable_op_determinism()
    from absl import flags

    from bert_tf.jobs import classifier, common, pretraining

    job = {"classifier": classifier, "pretraining": pretraining}[options.get("job", "classifier")]

    # The job keeps its trainer to itself; catch it to report what each worker holds in memory
    # (non-chief workers write no checkpoint to read it from).
    captured = {}
    make_trainer = common.make_trainer

    def capturing_make_trainer(*args, **kwargs):
        trainer = make_trainer(*args, **kwargs)
        train = trainer.train

        def train_and_keep(*train_args, **train_kwargs):
            captured["summary"] = train(*train_args, **train_kwargs)
            return captured["summary"]

        trainer.train = train_and_keep
        captured["trainer"] = trainer
        return trainer

    common.make_trainer = capturing_make_trainer
    report = []
    for index, run_argv in enumerate(runs):
        fv = flags.FlagValues()
        job.define_flags(fv)
        fv(["runner"] + run_argv)
        result = job.run(fv)
        trainer = captured["trainer"]
        arrays = {f"model/{v.name}": v.numpy() for v in trainer.model.weights}
        if trainer.is_chief:
            arrays.update(_checkpoint_arrays(fv.output_dir))
        npz = f"{options['report']}.{index}.npz"
        np.savez(npz, **{k.replace("/", "|"): v for k, v in arrays.items()})
        report.append({"weights": npz, "train_history": captured["summary"]["train_history"],
                       "global_step": captured["summary"]["global_step"], "eval": result.get("eval"),
                       "is_chief": trainer.is_chief})
    with open(options["report"], "w") as f:
        json.dump(report, f)


if __name__ == "__main__":
    main(sys.argv[1:])
