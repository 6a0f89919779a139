"""Masked-LM + next-sentence pretraining from google-research/bert-schema TFRecords.

Trains from scratch (``--bert_config_file``) or continues from ``--init_checkpoint``; rerunning
the same command resumes from output_dir/checkpoints (the Trainer's job). The final model is
written in Hugging Face format to output_dir/model, which ``TFBertForPreTraining.from_pretrained``
and every fine-tuning script (``--init_checkpoint=<output_dir>``) load.
"""
import os

import tensorflow as tf
from absl import flags as absl_flags

from bert_tf import distribute, fileio, run_metadata
from bert_tf import flags as flag_groups
from bert_tf.data import pretraining_records as data
from bert_tf.data import records
from bert_tf.data.dynamic_masking import mask_batch
from bert_tf.errors import UserError
from bert_tf.jobs import common
from bert_tf.modeling import checkpoints
from bert_tf.modeling.pretraining import BertPretrainingModel
from bert_tf.training import run_lock


def define_flags(fv=absl_flags.FLAGS):
    flag_groups.define_model_flags(fv)
    flag_groups.define_training_flags(fv, learning_rate=1e-4, batch_size=32)
    flag_groups.define_strategy_flags(fv)
    f = absl_flags
    f.DEFINE_alias("model_config", "bert_config_file", flag_values=fv)
    f.DEFINE_string("input_file", None, "Training records from create_pretraining_data.py (comma-separated globs).",
                    flag_values=fv)
    f.DEFINE_string("eval_input_file", None, "Held-out records evaluated every --eval_steps and at the end.",
                    flag_values=fv)
    f.DEFINE_integer("max_predictions_per_seq", 20, "Masked-LM predictions per sequence in the records.",
                     flag_values=fv)
    f.DEFINE_integer("num_train_steps", 100000, "Optimizer steps to train for.", flag_values=fv)
    f.DEFINE_integer("num_warmup_steps", 10000, "Steps of linear learning-rate warmup.", flag_values=fv)
    f.DEFINE_integer("eval_steps", None, "Evaluate on --eval_input_file every N steps (default: at the end).",
                     flag_values=fv)
    f.DEFINE_integer("max_eval_steps", 100, "Batches per evaluation.", flag_values=fv)
    f.DEFINE_integer("gradient_accumulation_steps", 1,
                     "Sum gradients of N batches of --train_batch_size per optimizer step (effective batch N x).",
                     flag_values=fv)
    f.DEFINE_bool("dynamic_masking", False,
                  "Records are unmasked (create_pretraining_data.py --dynamic_masking): draw new masks for "
                  "every batch in the input pipeline.", flag_values=fv)
    f.DEFINE_float("masked_lm_prob", 0.15, "With --dynamic_masking: fraction of tokens to predict.", flag_values=fv)
    f.DEFINE_bool("gzip", False, "The records are GZIP-compressed.", flag_values=fv)
    # google-research/bert's switches. Training is on by default because bert_tf's run_pretraining always
    # trained; --do_train=false --do_eval=true evaluates the latest checkpoint in --output_dir (or
    # --init_checkpoint when there is none).
    f.DEFINE_bool("do_train", True, "Train on --input_file for --num_train_steps.", flag_values=fv)
    f.DEFINE_bool("do_eval", False, "After training, evaluate --max_eval_steps batches of --eval_input_file (default: "
                  "--input_file, as google-research/bert does) into eval_results.json and eval_results.txt.",
                  flag_values=fv)
    flag_groups.check_ranges(fv)


def _records_dataset(flags, setup, files, is_training, batch_size, context):
    spec = data.feature_spec(flags.max_seq_length, flags.max_predictions_per_seq, flags.dynamic_masking)
    per_replica = context.get_per_replica_batch_size(batch_size) if context else batch_size
    dataset = records.make_dataset(files, spec, per_replica, is_training, seed=flags.seed, input_context=context,
                                   drop_remainder=True, compression="GZIP" if flags.gzip else None,
                                   skip_corrupt=is_training and getattr(flags, "skip_corrupt_records", False))
    if flags.dynamic_masking:
        tokenizer = setup.tokenizer
        pipeline = context.input_pipeline_id if context else 0
        # One seed pair per batch from a seeded stream: new masks each epoch, same masks on resume.
        seeds = tf.data.Dataset.random(seed=flags.seed + 7919 * pipeline).batch(2).skip(
            records.local_batches_consumed(context))  # a resumed run starts where the batches start
        dataset = tf.data.Dataset.zip((dataset, seeds)).map(
            lambda features, seed: mask_batch(features, seed, tokenizer.vocab_size, tokenizer.mask_id,
                                              tokenizer.cls_id, tokenizer.sep_id, flags.max_predictions_per_seq,
                                              flags.masked_lm_prob),
            num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).prefetch(tf.data.AUTOTUNE)
    return dataset


# Our metric names -> google-research/bert's eval_results.txt keys.
GOOGLE_EVAL_NAMES = {"mlm_accuracy": "masked_lm_accuracy", "mlm_loss": "masked_lm_loss",
                     "nsp_accuracy": "next_sentence_accuracy", "nsp_loss": "next_sentence_loss"}


def make_evaluator(flags, setup, trainer, files):
    """eval_fn for the Trainer: weighted means of the training metrics over --max_eval_steps batches."""
    strategy = trainer.strategy
    names = BertPretrainingModel.train_metric_names

    def replica_sums(features):
        model = trainer.model
        outputs = model(features, training=False)
        sums = {}
        for name, (values, weights) in model.train_metrics(features, outputs).items():
            weights = tf.ones_like(values) if weights is None else weights
            sums[name] = tf.stack([tf.reduce_sum(values * weights), tf.reduce_sum(weights)])
        return sums

    step = tf.function(replica_sums)

    def evaluate(model):
        dataset = distribute.distribute_dataset(
            strategy, lambda context: _records_dataset(flags, setup, files, False, flags.eval_batch_size, context))
        totals = {name: tf.zeros([2]) for name in names}
        batches = 0
        for features in dataset:
            if batches >= flags.max_eval_steps:
                break
            per_replica = strategy.run(step, args=(features,))
            for name in names:
                totals[name] += strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica[name], axis=None)
            batches += 1
        if not batches:
            raise UserError(f"--eval_input_file {flags.eval_input_file} has fewer than --eval_batch_size="
                            f"{flags.eval_batch_size} records: use a smaller --eval_batch_size")
        results = {name: float(total[0] / tf.maximum(total[1], 1.0)) for name, total in totals.items()}
        results["eval_batches"] = batches
        if trainer.is_chief:
            fileio.write_json(os.path.join(flags.output_dir, "eval_results.json"), results)
            google = {GOOGLE_EVAL_NAMES.get(k, k): v for k, v in results.items() if k != "eval_batches"}
            google["loss"] = results["mlm_loss"] + results["nsp_loss"]
            common.write_eval_results_txt(flags.output_dir, google, trainer.global_step)
        return results

    return evaluate


def _train_and_evaluate(flags, trainer, setup, files, eval_fn):
    """--do_train runs the Trainer (evaluating every --eval_steps and at the end when there is an
    eval_fn); --do_eval then has one evaluation of the final weights, made here only if training made none."""
    if flags.do_train:
        summary = trainer.train(lambda context: _records_dataset(flags, setup, files, True, flags.train_batch_size,
                                                                 context),
                                flags.num_train_steps, eval_fn=eval_fn, eval_steps=flags.eval_steps,
                                overwrite_output_dir=flags.overwrite_output_dir)
    else:
        latest = tf.train.latest_checkpoint(os.path.join(flags.output_dir, "checkpoints"))
        if latest:
            tf.train.Checkpoint(model=trainer.model, optimizer=trainer.optimizer).read(latest).expect_partial()
        summary = {"global_step": trainer.global_step, "train_history": [], "eval_history": [], "best": None,
                   "stopped_early": False, "train_seconds": 0.0, "skipped_batches": 0, "corrupt_files_skipped": {}}
    history = summary["eval_history"]
    if flags.do_eval and not (history and history[-1]["step"] == summary["global_step"]):
        history.append(dict(eval_fn(trainer.model), step=summary["global_step"]))
    return summary


@run_lock.holding_output_dir
def run(flags):
    """The run_pretraining job; returns {'train': summary, 'eval': last evaluation or None}."""
    started = run_metadata.now()
    if not flags.output_dir:
        raise UserError("--output_dir is required")
    if not flags.input_file:
        raise UserError("--input_file is required: records written by tools/create_pretraining_data.py")
    if flags.num_train_steps <= 0:
        raise UserError(f"--num_train_steps={flags.num_train_steps} must be positive")
    if flags.max_eval_steps <= 0:
        raise UserError(f"--max_eval_steps={flags.max_eval_steps} must be positive")
    # Before any TensorFlow op (check_records reads a record): multi-worker collectives are
    # configured at start-up.
    strategy = common.strategy_from(flags)
    setup = common.resolve_model(flags)
    compression = "GZIP" if flags.gzip else None
    files = fileio.expand_inputs(flags.input_file)
    data.check_records(files[0], flags.max_seq_length, flags.max_predictions_per_seq, flags.dynamic_masking,
                       compression)
    eval_files = None
    if flags.eval_input_file:
        eval_files = fileio.expand_inputs(flags.eval_input_file, what="--eval_input_file")
        data.check_records(eval_files[0], flags.max_seq_length, flags.max_predictions_per_seq,
                           flags.dynamic_masking, compression)
    if not (flags.do_train or flags.do_eval):
        raise UserError("nothing to do: pass --do_train, --do_eval or both")
    # After the records matched the flags: their own message is the more precise one.
    common.prepare_output_dir(flags, training=flags.do_train)
    if flags.do_eval and not eval_files:
        eval_files = files
    fileio.ensure_dir(flags.output_dir)

    def model_fn():
        return common.load_init(BertPretrainingModel(setup.config), setup)

    trainer = common.make_trainer(flags, strategy, model_fn, flags.num_train_steps, flags.num_warmup_steps)
    eval_fn = make_evaluator(flags, setup, trainer, eval_files) if eval_files else None
    summary = _train_and_evaluate(flags, trainer, setup, files, eval_fn)
    if trainer.is_chief:
        checkpoints.save_hf(trainer.model, os.path.join(flags.output_dir, "model"),
                            vocab_file=setup.tokenizer.vocab_file, do_lower_case=setup.tokenizer.do_lower_case,
                            meta={"max_seq_length": flags.max_seq_length,
                                  "max_predictions_per_seq": flags.max_predictions_per_seq,
                                  "global_step": summary["global_step"]})
    results = {"train": summary, "eval": summary["eval_history"][-1] if summary["eval_history"] else None}
    run_metadata.write(flags, results, started, trainer.is_chief)
    return results
