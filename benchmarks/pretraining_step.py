"""Pretraining step: sequences/s of our Trainer + BertPretrainingModel vs TFBertForPreTraining with Keras fit.

The peer is the naive way: ``TFBertForPreTraining`` compiled with AdamW and trained by
``model.fit`` on its own loss, which projects every position onto the full vocabulary (labels
-100 where nothing is masked). Ours gathers the masked positions first. Same config, batch,
sequence length, predictions per sequence and synthetic data; each side is timed after a
warm-up that includes tracing/compilation.

Each side's rate also comes as FLOP utilisation (benchmarks.flops): the model FLOPs of the
work that side does per sequence (ours: the vocabulary projection at the masked positions only;
the peer's: at every position) times its rate, as a share of a float32 matmul peak timed in the
same run.
"""
import os
import sys
import tempfile
import time

import numpy as np
from absl import flags as absl_flags

from benchmarks import flops


def define_flags(fv):
    f = absl_flags
    f.DEFINE_string("model", "tiny", "Model preset or config JSON (vocab_size as given, 30522 for presets).",
                    flag_values=fv)
    f.DEFINE_integer("batch_size", 32, "Global batch size.", flag_values=fv)
    f.DEFINE_integer("seq_length", 128, "Sequence length.", flag_values=fv)
    f.DEFINE_integer("predictions", 20, "Masked positions per sequence.", flag_values=fv)
    f.DEFINE_integer("steps", 20, "Timed steps per side.", flag_values=fv)
    f.DEFINE_integer("warmup_steps", 3, "Untimed steps first (tracing, compilation).", flag_values=fv)
    f.DEFINE_bool("jit", False, "XLA-compile both steps.", flag_values=fv)


def synthetic_batch(config, batch, seq, predictions, seed=0):
    """Packed-like sequences with sorted distinct masked positions (numpy, int32)."""
    rng = np.random.RandomState(seed)
    ids = rng.randint(5, config.vocab_size, (batch, seq)).astype(np.int32)
    positions = np.sort(np.stack([rng.choice(np.arange(1, seq - 1), predictions, replace=False)
                                  for _ in range(batch)]), axis=1).astype(np.int32)
    labels = np.take_along_axis(ids, positions, axis=1)
    masked = ids.copy()
    np.put_along_axis(masked, positions, 4, axis=1)
    segments = np.zeros((batch, seq), np.int32)
    segments[:, seq // 2:] = 1
    return {"input_ids": masked, "attention_mask": np.ones((batch, seq), np.int32), "token_type_ids": segments,
            "masked_lm_positions": positions, "masked_lm_ids": labels,
            "masked_lm_weights": np.ones((batch, predictions), np.float32),
            "next_sentence_labels": rng.randint(0, 2, (batch, 1)).astype(np.int32)}


def _ours(config, batch, flags):
    import tensorflow as tf

    from bert_tf.modeling.pretraining import BertPretrainingModel
    from bert_tf.training import optimization
    from bert_tf.training.trainer import Trainer

    total = flags.warmup_steps + flags.steps
    directory = tempfile.mkdtemp(prefix="bench_step_ours_")
    trainer = Trainer(tf.distribute.get_strategy(), lambda: BertPretrainingModel(config).build_with_dummies(),
                      lambda: optimization.create_optimizer(1e-4, total, 0), directory, flags.batch_size,
                      jit_compile=flags.jit, save_checkpoints_steps=10 ** 9, log_steps=10 ** 9)
    dataset_fn = lambda context: tf.data.Dataset.from_tensors(batch).repeat()  # noqa: E731
    trainer.train(dataset_fn, flags.warmup_steps, verbose=False)
    # The Trainer's own throughput figure: from the first timed step to the last, without the
    # checkpoint restore before and the save after.
    summary = trainer.train(dataset_fn, total, verbose=False)
    return summary["train_history"][-1]["examples_per_second"]


def _keras_fit(config, batch, flags):
    import tensorflow as tf
    import tf_keras
    from transformers import TFBertForPreTraining

    labels = np.full(batch["input_ids"].shape, -100, np.int32)
    np.put_along_axis(labels, batch["masked_lm_positions"], batch["masked_lm_ids"], axis=1)
    inputs = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"],
              "token_type_ids": batch["token_type_ids"], "labels": labels,
              "next_sentence_label": batch["next_sentence_labels"][:, 0]}
    model = TFBertForPreTraining(config)
    model.compile(optimizer=tf_keras.optimizers.AdamW(1e-4, weight_decay=0.01, epsilon=1e-6, global_clipnorm=1.0),
                  jit_compile=flags.jit)
    dataset = tf.data.Dataset.from_tensors(inputs).repeat()
    model.fit(dataset, steps_per_epoch=flags.warmup_steps, epochs=1, verbose=0)
    started = time.time()
    model.fit(dataset, steps_per_epoch=flags.steps, epochs=1, verbose=0)
    return flags.steps * flags.batch_size / (time.time() - started)


def run(flags):
    import bert_tf  # noqa: F401

    from bert_tf import config as config_lib

    config = config_lib.load_bert_config(flags.model)
    config_lib.check_seq_length(config, flags.seq_length)
    batch = synthetic_batch(config, flags.batch_size, flags.seq_length, flags.predictions)
    peak = flops.matmul_peak("float32")
    ours = _ours(config, batch, flags)
    peer = _keras_fit(config, batch, flags)
    # Per sequence: every one is seq_length long here (no padding to round up).
    ours_flops = flops.training_flops(config, [flags.seq_length], "pretraining", predictions=flags.predictions) * ours
    peer_flops = flops.training_flops(config, [flags.seq_length], "pretraining", predictions=flags.seq_length) * peer
    print(f"model {flags.model} (L{config.num_hidden_layers} H{config.hidden_size} vocab {config.vocab_size}), "
          f"batch {flags.batch_size}, seq {flags.seq_length}, predictions {flags.predictions}, "
          f"{flags.steps} timed steps, jit {flags.jit}, cpus {os.cpu_count()}")
    print(f"     ours: {ours:,.1f} sequences/s (Trainer, MLM head on masked positions only), "
          f"{flops.describe(ours_flops, 1.0, peak)}")
    print(f"     peer: {peer:,.1f} sequences/s (TFBertForPreTraining + Keras fit, full-vocab logits), "
          f"{flops.describe(peer_flops, 1.0, peak)}")
    print(f"ratio: {ours / peer:.2f}x")
    argv = " ".join(a for a in sys.argv[1:] if a.startswith("--"))
    print(f"reproduce: python tools/benchmark.py pretraining_step {argv}".rstrip())
    return {"ours": ours, "peer": peer, "ratio": ours / peer, "matmul_peak_flops": peak,
            "ours_flop_share": ours_flops / peak, "peer_flop_share": peer_flops / peak}
