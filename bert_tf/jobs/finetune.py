"""Steps the fine-tuning jobs (classification, tagging, SQuAD, multiple choice) share around the trainer."""
import json
import math
import os

import tensorflow as tf

from bert_tf import fileio
from bert_tf.data import records
from bert_tf.errors import UserError
from bert_tf.jobs import common
from bert_tf.modeling import checkpoints
from bert_tf.training import optimization


def check_outputs(flags):
    """At least one of --do_train/--do_eval/--do_predict, a usable --output_dir and, when training,
    a consistent learning-rate schedule."""
    if not (flags.do_train or flags.do_eval or flags.do_predict):
        raise UserError("nothing to do: pass at least one of --do_train, --do_eval, --do_predict")
    if not flags.output_dir:
        raise UserError("--output_dir is required")
    if flags.do_train:
        optimization.check_schedule_flags(flags)
    common.prepare_output_dir(flags, training=flags.do_train)
    fileio.ensure_dir(flags.output_dir)


def length_buckets(flags):
    """--length_buckets below --max_seq_length, plus --max_seq_length itself (None: no bucketing)."""
    bounds = sorted({int(b) for b in (flags.length_buckets or []) if int(b) < flags.max_seq_length})
    return bounds + [flags.max_seq_length] if bounds else None


def init_meta(init_checkpoint):
    """The bert_tf.json of a fine-tuned --init_checkpoint (task, labels, ...), or None for a pretrained one."""
    if init_checkpoint and tf.io.gfile.exists(os.path.join(init_checkpoint, checkpoints.MODEL_META)):
        return checkpoints.read_model_meta(init_checkpoint)
    return None


def dataset_fn_for(flags, spec, path, is_training, batch_size, length_buckets=None, sequence_keys=()):
    """A ``dataset_fn(input_context)`` for the trainer: the shared reader over one converted records file."""
    def dataset_fn(context):
        per_replica = context.get_per_replica_batch_size(batch_size) if context else batch_size
        return records.make_dataset(path, spec, per_replica, is_training, seed=flags.seed, input_context=context,
                                    length_buckets=length_buckets,
                                    sequence_keys=sequence_keys,
                                    skip_corrupt=is_training and getattr(flags, "skip_corrupt_records", False))
    return dataset_fn


def make_trainer(flags, strategy, model_fn, setup, num_train_examples):
    """The fine-tuning Trainer and its step count: steps from the epochs over ``num_train_examples``
    (1 when not training), warmup from --warmup_proportion, the encoder depth for
    --layerwise_lr_decay."""
    num_train_steps = common.num_steps(flags, num_train_examples) if flags.do_train else 1
    trainer = common.make_trainer(flags, strategy, model_fn, num_train_steps,
                                  int(num_train_steps * flags.warmup_proportion),
                                  num_layers=setup.config.num_hidden_layers)
    return trainer, num_train_steps


def predict(flags, trainer, dataset_fn, num_examples, keep_features=(), batch_size=None):
    """``trainer.predict`` over an evaluation file, with a progress bar counting its batches."""
    return trainer.predict(dataset_fn, keep_features=keep_features, verbose=True,
                           total_batches=math.ceil(num_examples / (batch_size or flags.eval_batch_size)))


def train_and_save(flags, trainer, setup, train_dataset_fn, num_train_steps, train_stats, eval_fn, meta):
    """Trains (evaluating with ``eval_fn`` if given), keeps the best checkpoint if asked, saves the model.

    Returns the 'train' results entry; the model goes to output_dir/model in Hugging Face format.
    """
    summary = trainer.train(train_dataset_fn, num_train_steps,
                            eval_fn=(lambda model: eval_fn()) if eval_fn else None,
                            eval_steps=flags.eval_every_steps, metric_for_best_model=flags.metric_for_best_model,
                            greater_is_better=flags.metric_for_best_model not in ("loss", "mse"),
                            early_stopping_patience=flags.early_stopping_patience,
                            overwrite_output_dir=flags.overwrite_output_dir)
    if flags.metric_for_best_model:
        trainer.restore_best()
    if trainer.is_chief:
        checkpoints.save_hf(trainer.model, os.path.join(flags.output_dir, "model"),
                            vocab_file=setup.tokenizer.vocab_file, do_lower_case=setup.tokenizer.do_lower_case,
                            meta=meta)
    return {"global_step": summary["global_step"], "best": summary["best"], "train_seconds": summary["train_seconds"],
            "stopped_early": summary["stopped_early"], **train_stats,
            "final_eval": _evaluation_of_saved_weights(summary)}


def _evaluation_of_saved_weights(summary):
    """The evaluation training ran on the weights it saved (the best ones with --metric_for_best_model), or
    None when there was none in this run (e.g. a resumed run that had already finished)."""
    best = summary["best"]
    step = best["step"] if best else summary["global_step"]
    for evaluation in reversed(summary["eval_history"]):
        if evaluation.get("step") == step:
            return {k: v for k, v in evaluation.items() if k != "step"}
    return None


def evaluate_once(results, evaluate):
    """--do_eval's result: the evaluation training already ran on the saved weights, else ``evaluate()``.
    Training evaluates the dev set at its last step, so --do_train --do_eval no longer evaluates twice."""
    final = results.get("train", {}).pop("final_eval", None)
    return final if final is not None else evaluate()


def write_results(flags, trainer, split, result):
    """eval_results.json / test_results.json (the chief writes; nothing when there is no result), and for
    evaluations google-research/bert's eval_results.txt."""
    if trainer.is_chief and result is not None:
        fileio.write_json(os.path.join(flags.output_dir, f"{split}_results.json"), result)
        if split == "eval":
            values = {f"eval_{k}": v for k, v in result.items() if isinstance(v, (int, float)) and v is not None}
            if "loss" in result:
                values["loss"] = result["loss"]
            common.write_eval_results_txt(flags.output_dir, values, trainer.global_step)


def check_scorable(flag, path, stats, label_list, num_labelled):
    """Refuses an evaluation that could only report a vacuous score: no examples, or no gold label (of
    ``num_labelled``) in the model's label set."""
    if not stats["num_examples"]:
        raise UserError(f"{flag} {path} has no examples to score: pass a file with labelled examples")
    if label_list is not None and num_labelled and stats.get("unseen_labels", 0) >= num_labelled:
        raise UserError(f"no label of {flag} {path} is one the model predicts (its labels include "
                        f"{stats['unseen_label_values'][:5]}; the model's: {list(label_list)[:20]}): evaluate on data "
                        "with the trained labels, or train with these")


def print_results(results):
    """The scripts' summary lines: training time, then flat eval/test metrics as JSON."""
    train = results.get("train")
    if train and train.get("train_seconds") is not None:
        print(f"train: step {train['global_step']}, {train['train_seconds']:.1f} s in training steps")
    for split in ("eval", "test"):
        if results.get(split):
            shown = {k: v for k, v in results[split].items() if not isinstance(v, (list, dict))}
            print(f"{split}: {json.dumps(shown, sort_keys=True)}")
