"""resume: seconds to the first batch when resuming at a large step, placed input vs replaying it with skip().

A synthetic pretraining-shaped records file (``--records`` examples of ``--seq_length`` tokens)
is read the way training reads it (``records.make_dataset``, shuffled, batches of
``--batch_size``). A run resumed at ``--resume_step`` gets its input placed by arithmetic
(``records.InputPosition``); the peer is the former approach, ``dataset.skip(consumed)``, which
decodes, shuffles and batches everything before that step. Replaying 100k steps takes hours, so
the peer is timed over ``--replay_steps`` steps and extrapolated linearly (its cost is linear in
the steps skipped); the placed batch at ``--replay_steps`` is checked to equal the replayed one.
"""
import os
import tempfile
import time

import numpy as np
from absl import flags as absl_flags

from bert_tf.errors import UserError


def define_flags(fv):
    f = absl_flags
    f.DEFINE_integer("records", 100000, "Examples in the synthetic records file.", flag_values=fv)
    f.DEFINE_integer("seq_length", 128, "Tokens per example.", flag_values=fv)
    f.DEFINE_integer("batch_size", 256, "Global batch size (one device).", flag_values=fv)
    f.DEFINE_integer("resume_step", 100000, "The step the run resumes at.", flag_values=fv)
    f.DEFINE_integer("replay_steps", 200, "Steps the replaying peer is timed over (then extrapolated).",
                     flag_values=fv)
    f.DEFINE_string("work_dir", None, "Where the records file goes (default: a temporary directory).",
                    flag_values=fv)


def _write_records(path, count, seq_length):
    import tensorflow as tf

    from bert_tf.data import records

    rng = np.random.default_rng(0)
    distinct = []
    for index in range(256):
        length = int(rng.integers(seq_length // 4, seq_length + 1))
        mask = np.zeros(seq_length, np.int64)
        mask[:length] = 1
        ids = rng.integers(1000, 30000, seq_length) * mask
        ids[0] = index
        distinct.append(records.to_example({"input_ids": ids, "input_mask": mask,
                                            "segment_ids": np.zeros(seq_length, np.int64)}).SerializeToString())
    with tf.io.TFRecordWriter(path) as writer:
        for index in range(count):
            writer.write(distinct[index % len(distinct)])


def _first_batch(path, flags, start_step, replay):
    """(seconds to the first batch, that batch) for a run resumed at ``start_step``."""
    import tensorflow as tf

    from bert_tf.data import records

    spec = records.fixed_int_spec(["input_ids", "input_mask", "segment_ids"], flags.seq_length)
    started = time.time()
    context = tf.distribute.InputContext() if replay else records.InputPosition(None, start_step)
    dataset = records.make_dataset(path, spec, flags.batch_size, True, seed=1, input_context=context)
    if replay:
        dataset = dataset.skip(start_step)
    batch = next(iter(dataset))
    return time.time() - started, {k: v.numpy() for k, v in batch.items()}


def run(flags):
    if min(flags.records, flags.seq_length, flags.batch_size, flags.resume_step, flags.replay_steps) <= 0:
        raise UserError("--records, --seq_length, --batch_size, --resume_step and --replay_steps must be positive")
    import tensorflow as tf

    work_dir = flags.work_dir or tempfile.mkdtemp(prefix="bert_tf_resume_")
    tf.io.gfile.makedirs(work_dir)
    path = os.path.join(work_dir, f"synthetic-{flags.records}x{flags.seq_length}.tfrecord")
    if not tf.io.gfile.exists(path):
        _write_records(path + ".partial", flags.records, flags.seq_length)
        tf.io.gfile.rename(path + ".partial", path, overwrite=True)
    _first_batch(path, flags, 0, replay=False)  # warm the file cache and TensorFlow's start-up
    replay_seconds, replayed = _first_batch(path, flags, flags.replay_steps, replay=True)
    placed_small, placed = _first_batch(path, flags, flags.replay_steps, replay=False)
    for name in replayed:
        if not np.array_equal(placed[name], replayed[name]):
            raise UserError(f"placed and replayed input differ at step {flags.replay_steps} ({name}): a bug")
    placed_seconds, _ = _first_batch(path, flags, flags.resume_step, replay=False)
    baseline_seconds, _ = _first_batch(path, flags, 0, replay=False)
    per_step = max(replay_seconds - baseline_seconds, 1e-9) / flags.replay_steps
    replay_estimate = baseline_seconds + per_step * flags.resume_step
    examples = flags.resume_step * flags.batch_size
    print(f"records file: {flags.records} examples x {flags.seq_length} tokens; batch {flags.batch_size}; resume at "
          f"step {flags.resume_step} ({examples:,} examples consumed, {examples / flags.records:.1f} epochs)")
    print(f"fresh start, first batch:          {baseline_seconds:8.2f} s")
    print(f"placed at step {flags.replay_steps}, first batch:   {placed_small:8.2f} s (equals the replayed batch)")
    print(f"replayed {flags.replay_steps} steps with skip():     {replay_seconds:8.2f} s "
          f"({per_step * 1000:.1f} ms per skipped step)")
    print(f"placed at step {flags.resume_step}, first batch: {placed_seconds:8.2f} s")
    print(f"replay to step {flags.resume_step} (extrapolated): {replay_estimate:8.0f} s "
          f"({replay_estimate / 3600:.1f} h)")
    print(f"ratio replay / placed: {replay_estimate / placed_seconds:.0f}x")
    print(f"reproduce: python tools/benchmark.py resume --records={flags.records} --seq_length={flags.seq_length} "
          f"--batch_size={flags.batch_size} --resume_step={flags.resume_step} --replay_steps={flags.replay_steps}")
    return {"placed_seconds": placed_seconds, "replay_seconds_estimate": replay_estimate,
            "replay_seconds_measured": replay_seconds, "replay_steps": flags.replay_steps,
            "fresh_seconds": baseline_seconds, "ratio": replay_estimate / placed_seconds}
