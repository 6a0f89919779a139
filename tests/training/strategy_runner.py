"""Runs classifier jobs in a fresh process whose CPU is split into logical devices.

Logical devices must be configured before TensorFlow initialises its devices, which pytest's
process has long done, so tests start this script as a subprocess:

  python tests/training/strategy_runner.py --cpus=2 --report=out.json -- FLAGS... -- FLAGS...

Each ``--``-separated flag set is one ``classifier.run``; the report lists, per run, the final
checkpoint's variables (as a .npz next to the report) and the logged training metrics.
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
    _split_cpu(int(options.get("cpus", "1")))
    if options.get("determinism") == "1":
        tf.config.experimental.enable_op_determinism()
    from absl import flags

    from bert_tf.jobs import classifier

    report = []
    for index, run_argv in enumerate(runs):
        fv = flags.FlagValues()
        classifier.define_flags(fv)
        fv(["runner"] + run_argv)
        result = classifier.run(fv)
        arrays = _checkpoint_arrays(fv.output_dir)
        npz = f"{options['report']}.{index}.npz"
        np.savez(npz, **{k.replace("/", "|"): v for k, v in arrays.items()})
        with open(os.path.join(fv.output_dir, "train_metrics.jsonl")) as f:
            logged = [json.loads(line) for line in f]
        report.append({"weights": npz, "train_metrics": logged,
                       "global_step": result["train"]["global_step"], "eval": result.get("eval")})
    with open(options["report"], "w") as f:
        json.dump(report, f)


if __name__ == "__main__":
    main(sys.argv[1:])
