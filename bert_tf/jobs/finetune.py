"""The fine-tuning job: one sequence for every task (bert_tf/tasks/): check the outputs and flags,
build the strategy and model set-up, resolve labels, convert the files into the cache, check the head
against a fine-tuned --init_checkpoint, then train, evaluate, predict, save and record the run."""
import json
import math
import os

import tensorflow as tf

from bert_tf import fileio, run_metadata
from bert_tf.data import packing, records
from bert_tf.data import report as data_report
from bert_tf.errors import UserError
from bert_tf.jobs import common
from bert_tf.modeling import checkpoints
from bert_tf.training import optimization, recipes, run_lock

SPLIT_FLAGS = (("train", "do_train"), ("dev", "do_eval"), ("test", "do_predict"))


def run(task, flags):
    """Runs ``task`` (built from ``flags``) as --do_train/--do_eval/--do_predict ask; returns
    {'train'/'eval'/'test': results} for what was asked."""
    return _run(flags, task)


@run_lock.holding_output_dir
def _run(flags, task):
    started = run_metadata.now()
    # Before any flag is read: --recipe supplies the defaults of the schedule, decay and clipping flags.
    recipes.apply(flags)
    check_outputs(flags)
    task.check_flags()
    wanted = [split for split, switch in SPLIT_FLAGS
              if getattr(flags, switch) or (split == "dev" and flags.do_train and flags.eval_every_steps)]
    for split in wanted:
        task.file(split)  # a missing file flag stops the run before any work
    # First TensorFlow work: multi-worker collectives must be configured before any other op runs.
    strategy = common.strategy_from(flags)
    setup = common.resolve_model(flags)
    stored = init_meta(setup.init_checkpoint)
    splits = {"train": task.read("train")} if flags.do_train else {}
    if flags.do_train and flags.max_train_examples:
        splits["train"].examples = splits["train"].examples[: flags.max_train_examples]
    task.resolve_labels(stored, splits.get("train"))
    # After the training data and labels passed their checks: a refused run writes nothing.
    data_report.report_job_data(flags, setup.tokenizer, task.report_kind, strategy)
    splits.update((split, task.read(split)) for split in wanted if split != "train")
    cache_dir = flags.cache_dir or os.path.join(flags.output_dir, "cache")
    for split in splits.values():
        split.records, converted = task.convert(split, setup.tokenizer, cache_dir)
        split.stats = dict(converted, **split.stats)
    task.settle_head(splits, stored)
    for split in splits.values():
        if split.name != "train":
            task.check_scorable(split)

    def model_fn():
        return common.load_init(task.build_model(setup.config), setup)

    num_train_steps = common.num_steps(flags, splits["train"].stats[task.count_key]) if flags.do_train else 1
    trainer = common.make_trainer(flags, strategy, model_fn, num_train_steps,
                                  int(num_train_steps * flags.warmup_proportion),
                                  num_layers=setup.config.num_hidden_layers)
    inputs = _Inputs(flags, task)

    def evaluate(split):
        """Predicts ``split``, writes the task's prediction files (the chief) and returns its scores."""
        batch_size = (getattr(flags, "predict_batch_size", None) if split.name == "test" else None) \
            or flags.eval_batch_size
        outputs = trainer.predict(inputs.dataset_fn(split.records, False, batch_size),
                                  keep_features=task.keep_features, verbose=True,
                                  total_batches=math.ceil(split.stats[task.count_key] / batch_size))
        result, files = task.evaluate(split, outputs)
        if trainer.is_chief:
            for name, content in files.items():
                path = os.path.join(flags.output_dir, name)
                fileio.write_text(path, content) if isinstance(content, str) else fileio.write_json(path, content)
        return result

    results = {}
    dev = splits.get("dev")
    if flags.do_train:
        train_inputs = inputs.dataset_fn(splits["train"].records, True, flags.train_batch_size,
                                         epoch_size=splits["train"].stats[task.count_key])
        results["train"] = train_and_save(flags, trainer, setup, train_inputs,
                                          num_train_steps, splits["train"].stats,
                                          (lambda: evaluate(dev)) if dev else None, task.meta())
    if flags.do_eval:
        # Prediction files are rewritten by every evaluation, so they match a reused evaluation only
        # without --metric_for_best_model (which restores earlier weights).
        results["eval"] = evaluate(dev) if task.evaluation_writes_files and flags.metric_for_best_model else \
            evaluate_once(results, lambda: evaluate(dev))
        write_results(flags, trainer, task, "eval", results["eval"])
    if flags.do_predict:
        scores = evaluate(splits["test"])
        if scores is not None:  # an unlabelled test file is only predicted
            results["test"] = scores
            write_results(flags, trainer, task, "test", scores)
    run_metadata.write(flags, results, started, trainer.is_chief, labels=task.labels)
    return results


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


def init_meta(init_checkpoint):
    """The bert_tf.json of a fine-tuned --init_checkpoint (task, labels, ...), or None for a pretrained one."""
    if init_checkpoint and tf.io.gfile.exists(os.path.join(init_checkpoint, checkpoints.MODEL_META)):
        return checkpoints.read_model_meta(init_checkpoint)
    return None


def length_buckets(flags):
    """--length_buckets below --max_seq_length, plus --max_seq_length itself (None: no bucketing)."""
    bounds = sorted({int(b) for b in (getattr(flags, "length_buckets", None) or []) if int(b) < flags.max_seq_length})
    return bounds + [flags.max_seq_length] if bounds else None


class _Inputs:
    """``dataset_fn(input_context)`` makers for the trainer over one task's converted files."""

    def __init__(self, flags, task):
        self.flags, self.spec, self.sequence_keys = flags, task.feature_spec(), task.sequence_keys
        self.buckets = length_buckets(flags) if task.sequence_keys else None

    def dataset_fn(self, path, is_training, batch_size, epoch_size=None):
        """``epoch_size``: the training records; a data set that fits the reader's shuffle window is
        shuffled one epoch at a time, so an epoch shows every example once (a window spanning
        several epochs of a small data set would show some twice and leave others out)."""
        flags = self.flags
        window = min(records.SHUFFLE_WINDOW, epoch_size) if epoch_size else records.SHUFFLE_WINDOW

        def dataset_fn(context):
            per_replica = context.get_per_replica_batch_size(batch_size) if context else batch_size
            dataset = records.make_dataset(path, self.spec, per_replica, is_training, seed=flags.seed,
                                        input_context=context, length_buckets=self.buckets,
                                        sequence_keys=self.sequence_keys, shuffle_buffer=window,
                                        group_by_length=bool(getattr(flags, "group_by_length", False)),
                                        skip_corrupt=is_training and getattr(flags, "skip_corrupt_records", False))
            if is_training and getattr(flags, "pack_sequences", False):
                row_length = flags.max_seq_length
                compiled = bool(getattr(flags, "jit_compile", False) or getattr(flags, "tpu", None))
                multiple = packing.ROW_MULTIPLE if compiled else 1
                dataset = dataset.map(lambda f: packing.pack_batch(f, row_length, multiple),
                                      num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
                dataset = dataset.prefetch(tf.data.AUTOTUNE)
            return dataset
        return dataset_fn


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


def write_results(flags, trainer, task, split, result):
    """eval_results.json / test_results.json and the task's files beside them (the chief writes; nothing
    when there is no result), and for evaluations google-research/bert's eval_results.txt."""
    if trainer.is_chief and result is not None:
        fileio.write_json(os.path.join(flags.output_dir, f"{split}_results.json"), result)
        if split == "eval":
            values = {f"eval_{k}": v for k, v in result.items() if isinstance(v, (int, float)) and v is not None}
            if "loss" in result:
                values["loss"] = result["loss"]
            common.write_eval_results_txt(flags.output_dir, values, trainer.global_step)
        task.write_result_files(flags.output_dir, split, result)


def print_results(results):
    """The scripts' summary lines: training time, then flat eval/test metrics as JSON."""
    train = results.get("train")
    if train and train.get("train_seconds") is not None:
        print(f"train: step {train['global_step']}, {train['train_seconds']:.1f} s in training steps")
    for split in ("eval", "test"):
        if results.get(split):
            shown = {k: v for k, v in results[split].items() if not isinstance(v, (list, dict))}
            print(f"{split}: {json.dumps(shown, sort_keys=True)}")
