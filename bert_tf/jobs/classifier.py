"""Sentence and sentence-pair classification and regression: convert, train, evaluate, predict, save."""
import csv
import io
import os

import numpy as np
from absl import flags as absl_flags

from bert_tf import fileio, run_metadata
from bert_tf import flags as flag_groups
from bert_tf.data import classification as data
from bert_tf.data import glue
from bert_tf.data import report as data_report
from bert_tf.errors import UserError
from bert_tf.jobs import common, finetune
from bert_tf.modeling.tasks import SequenceClassifier
from bert_tf.training import metrics, run_lock

DEFAULT_BUCKETS = "16,24,32,48,64,96,128,192,256,384,512"


def define_flags(fv=absl_flags.FLAGS):
    flag_groups.define_model_flags(fv)
    flag_groups.define_training_flags(fv, learning_rate=5e-5)
    flag_groups.define_strategy_flags(fv)
    f = absl_flags
    f.DEFINE_enum("task_type", "classification", ["classification", "regression"],
                  "classification (softmax over labels) or regression (one score, MSE).", flag_values=fv)
    flag_groups.define_finetune_flags(
        fv, data_format=".tsv (tab, header), .csv or .jsonl", predictions_file="test_predictions.tsv",
        length_buckets=DEFAULT_BUCKETS)
    f.DEFINE_string("tfds_name", None, "Read splits from tensorflow-datasets instead, e.g. glue/sst2.",
                    flag_values=fv)
    f.DEFINE_string("tfds_data_dir", None, "Where the tfds data set was prepared (no downloads happen).",
                    flag_values=fv)
    f.DEFINE_string("text_column", "sentence", "Column holding the text.", flag_values=fv)
    f.DEFINE_string("text_pair_column", None, "Column holding the second text of sentence-pair tasks.",
                    flag_values=fv)
    f.DEFINE_string("label_column", "label", "Column holding the label.", flag_values=fv)
    f.DEFINE_list("labels", None, "The label set, in id order (default: sorted labels of the training data).",
                  flag_values=fv)
    # google-research/bert's way in: a named task whose files sit in --data_dir in their standard layout.
    f.DEFINE_string("task_name", None, f"A GLUE/XNLI task read from --data_dir in its standard TSV layout, as "
                    f"google-research/bert does (replaces --train_file/--dev_file/--test_file and the column "
                    f"flags): {', '.join(glue.TASKS)}.", flag_values=fv)
    f.DEFINE_string("data_dir", None, "With --task_name: the directory holding the task's train/dev/test TSV files.",
                    flag_values=fv)
    f.DEFINE_integer("predict_batch_size", None, "Batch size for --do_predict (default: --eval_batch_size).",
                     flag_values=fv)
    flag_groups.check_ranges(fv)


def _source_settings(flags):
    """How examples are read, for the conversion cache key (the examples themselves are hashed too)."""
    names = ("task_name", "tfds_name", "tfds_data_dir", "text_column", "text_pair_column", "label_column", "encoding")
    return {name: getattr(flags, name, None) for name in names}


def _examples(flags, split, path, require_label=True):
    if flags.task_name:
        return glue.read_examples(flags.task_name, flags.data_dir, split), [glue.split_path(flags.task_name,
                                                                                           flags.data_dir, split)]
    if flags.tfds_name:
        tfds_split = {"train": "train", "dev": "validation", "test": "test"}[split]
        return data.read_tfds_examples(flags.tfds_name, tfds_split, flags.tfds_data_dir, flags.text_column,
                                       flags.text_pair_column, flags.label_column), []
    if not path:
        raise UserError(f"--{split}_file is required with --do_{ {'dev': 'eval'}.get(split, split) }")
    result = data.read_examples(path, flags.text_column, flags.text_pair_column, flags.label_column,
                                require_label=require_label, encoding=flags.encoding)
    return result, [path]


@run_lock.holding_output_dir
def run(flags):
    """The run_classifier job; returns {'eval': results, 'test': results} for what was asked."""
    started = run_metadata.now()
    finetune.check_outputs(flags)
    task = _check_task_flags(flags)
    if flags.do_eval and not (flags.dev_file or flags.tfds_name or task):
        raise UserError("--dev_file is required with --do_eval")
    if flags.do_predict and not (flags.test_file or flags.tfds_name or task):
        raise UserError("--test_file is required with --do_predict")
    if flags.do_train:
        common.check_training_flags(flags)
    # First TensorFlow work: multi-worker collectives must be configured before any other op runs.
    strategy = common.strategy_from(flags)
    regression = flags.task_type == "regression" or bool(task and task.regression)
    setup = common.resolve_model(flags)
    label_list = list(flags.labels) if flags.labels else (list(task.labels) if task and task.labels else None)
    init_meta = finetune.init_meta(setup.init_checkpoint)
    if init_meta and not flags.do_train:
        label_list = label_list or init_meta.get("labels")
    cache_dir = flags.cache_dir or os.path.join(flags.output_dir, "cache")

    train_records = None
    if flags.do_train:
        (examples, skipped), sources = _examples(flags, "train", flags.train_file)
        if flags.max_train_examples:
            examples = examples[: flags.max_train_examples]
        if regression:
            for example in examples:
                data.float_label(example)  # a word where a number belongs stops the run before any write
        if not regression:
            label_list = label_list or data.label_list_from(examples)
            unknown = sorted({e.label for e in examples} - set(label_list))
            if unknown:
                raise UserError(f"training labels {unknown[:5]} are not in --labels {label_list}: add them")
            if len(label_list) < 2:
                raise UserError(f"the training data has one label ({label_list}): classification needs two or more")
    if not regression and not label_list:
        raise UserError("the label set is unknown: pass --labels, or an --init_checkpoint fine-tuned by bert_tf")
    # After the training data and labels passed their checks: a refused run writes nothing.
    data_report.report_job_data(flags, setup.tokenizer, flags.task_type, strategy)
    if flags.do_train:
        train_records, train_stats = data.cached_records(examples, sources, cache_dir, "train", setup.tokenizer,
                                                         flags.max_seq_length, label_list, regression,
                                                         source=_source_settings(flags))
        train_stats["skipped_empty"] = skipped

    num_labels = 1 if regression else len(label_list)
    _check_head(init_meta, regression, label_list)

    def model_fn():
        model = SequenceClassifier(setup.config, num_labels=num_labels, regression=regression)
        return common.load_init(model, setup)

    trainer, num_train_steps = finetune.make_trainer(flags, strategy, model_fn, setup,
                                                     train_stats["num_examples"] if flags.do_train else None)
    spec = data.feature_spec(flags.max_seq_length, regression)

    def dataset_fn_for(path, is_training, batch_size):
        return finetune.dataset_fn_for(flags, spec, path, is_training, batch_size, finetune.length_buckets(flags),
                                       sequence_keys=("input_ids", "attention_mask", "token_type_ids"))

    def evaluate(path, stats):
        keep = ("label_values",) if regression else ("label_ids",)
        outputs = finetune.predict(flags, trainer, dataset_fn_for(path, False, flags.eval_batch_size),
                                   stats["num_examples"], keep_features=keep)
        return _score(outputs, regression, label_list, stats)

    dev_records = dev_stats = None
    if flags.do_eval or (flags.do_train and flags.eval_every_steps):
        (dev_examples, dev_skipped), dev_sources = _examples(flags, "dev", flags.dev_file)
        dev_records, dev_stats = data.cached_records(dev_examples, dev_sources, cache_dir, "dev", setup.tokenizer,
                                                     flags.max_seq_length, label_list, regression,
                                                     source=_source_settings(flags))
        dev_stats["skipped_empty"] = dev_skipped
        finetune.check_scorable("--dev_file", dev_sources[0] if dev_sources else flags.tfds_name, dev_stats,
                                None if regression else label_list, dev_stats["num_examples"])

    results = {}
    if flags.do_train:
        eval_fn = (lambda: evaluate(dev_records, dev_stats)) if dev_records else None
        results["train"] = finetune.train_and_save(
            flags, trainer, setup, dataset_fn_for(train_records, True, flags.train_batch_size), num_train_steps,
            train_stats, eval_fn, meta={"task": "regression" if regression else "classification",
                                        "labels": label_list, "max_seq_length": flags.max_seq_length,
                                        "text_pair": bool(task.pairs if task else flags.text_pair_column)})
    if flags.do_eval:
        results["eval"] = finetune.evaluate_once(results, lambda: evaluate(dev_records, dev_stats))
        _write_results(flags, trainer, "eval", results["eval"], label_list)
    if flags.do_predict:
        results["test"] = _predict(flags, setup, trainer, dataset_fn_for, label_list, regression, cache_dir)
    run_metadata.write(flags, results, started, trainer.is_chief, labels=label_list)
    return results


def _check_task_flags(flags):
    """The GLUE/XNLI task of --task_name (None without it); --data_dir must come with it, files must not."""
    if not flags.task_name:
        if flags.data_dir:
            raise UserError("--data_dir is read only with --task_name: add --task_name (one of "
                            f"{', '.join(glue.TASKS)}), or pass --train_file/--dev_file/--test_file instead")
        return None
    task = glue.get_task(flags.task_name)
    if not flags.data_dir:
        raise UserError(f"--task_name={flags.task_name} needs --data_dir, the directory holding its files")
    given = [name for name in ("train_file", "dev_file", "test_file", "tfds_name") if getattr(flags, name)]
    if given:
        raise UserError(f"--task_name reads its files from --data_dir, so --{given[0]} would be ignored: drop one")
    if task.regression and flags.task_type != "regression" and flags["task_type"].present:
        raise UserError(f"--task_name={flags.task_name} is a regression task: drop --task_type=classification")
    return task


def _check_head(init_meta, regression, label_list):
    """A fine-tuned checkpoint's head only fits the same task and label set."""
    if not init_meta or init_meta.get("task") not in ("classification", "regression"):
        return
    stored = init_meta.get("labels")
    if regression != (init_meta["task"] == "regression") or (not regression and stored and stored != label_list):
        raise UserError(f"--init_checkpoint was fine-tuned for {init_meta['task']} with labels {stored}, but this "
                        f"run has {'regression' if regression else label_list}: start from the pretrained model "
                        "instead, or pass --labels in the checkpoint's order")


def _score(outputs, regression, label_list, stats):
    if regression:
        result = metrics.regression_metrics(outputs["label_values"].reshape(-1), outputs["score"])
    else:
        gold = outputs["label_ids"].reshape(-1)
        known = gold >= 0
        predicted = outputs["logits"].argmax(-1)
        result = metrics.classification_metrics(gold[known], predicted[known], len(label_list))
        # The mean cross-entropy: google-research/bert's eval_loss.
        probabilities = np.clip(outputs["probabilities"][known][np.arange(int(known.sum())), gold[known]], 1e-12, 1)
        result["loss"] = float(-np.log(probabilities).mean()) if known.any() else None
        result["confusion_matrix"] = metrics.confusion_matrix(gold[known], predicted[known],
                                                              len(label_list)).tolist()
        result["unseen_labels"] = stats.get("unseen_labels", 0)
        if stats.get("unseen_labels"):
            result["unseen_label_values"] = stats["unseen_label_values"]
    result["truncated"] = stats.get("truncated", 0)
    result["skipped_empty"] = stats.get("skipped_empty", 0)
    return result


def _write_results(flags, trainer, split, result, label_list):
    """The shared results JSON, plus a classification report and confusion-matrix PNG."""
    finetune.write_results(flags, trainer, split, result)
    output_dir = flags.output_dir
    if trainer.is_chief and "confusion_matrix" in result:
        matrix = np.array(result["confusion_matrix"])
        fileio.write_text(os.path.join(output_dir, f"{split}_classification_report.txt"),
                          metrics.classification_report(matrix, label_list))
        metrics.save_confusion_matrix_png(matrix, label_list, os.path.join(output_dir, f"{split}_confusion_matrix.png"),
                                          title=f"{split} confusion matrix")


def _predict(flags, setup, trainer, dataset_fn_for, label_list, regression, cache_dir):
    (examples, skipped), sources = _examples(flags, "test", flags.test_file, require_label=False)
    path, stats = data.cached_records(examples, sources, cache_dir, "test", setup.tokenizer, flags.max_seq_length,
                                      label_list, regression, source=_source_settings(flags))
    stats["skipped_empty"] = skipped
    if all(e.label for e in examples):
        finetune.check_scorable("--test_file", sources[0] if sources else flags.tfds_name, stats,
                                None if regression else label_list, stats["num_examples"])
    keep = ("label_values",) if regression else ("label_ids",)
    batch_size = flags.predict_batch_size or flags.eval_batch_size
    outputs = finetune.predict(flags, trainer, dataset_fn_for(path, False, batch_size), len(examples),
                               keep_features=keep, batch_size=batch_size)
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter="\t", quoting=csv.QUOTE_NONE, escapechar="\\", lineterminator="\n")
    has_labels = all(e.label for e in examples)
    if regression:
        writer.writerow(["text", "gold", "predicted"])
        for example, score in zip(examples, outputs["score"]):
            writer.writerow([example.text, example.label or "", f"{score:.6f}"])
    else:
        writer.writerow(["text", "gold", "predicted", "probability"])
        for example, probabilities in zip(examples, outputs["probabilities"]):
            best = int(np.argmax(probabilities))
            writer.writerow([example.text, example.label or "", label_list[best], f"{probabilities[best]:.6f}"])
    result = None
    if trainer.is_chief:
        fileio.write_text(os.path.join(flags.output_dir, "test_predictions.tsv"), buffer.getvalue())
        if flags.task_name and not regression:
            # google-research/bert's predictions file: one line per example, the class probabilities.
            fileio.write_text(os.path.join(flags.output_dir, "test_results.tsv"),
                              "".join("\t".join(f"{p:.8f}" for p in row) + "\n" for row in outputs["probabilities"]))
    if has_labels:
        result = _score(outputs, regression, label_list, stats)
        _write_results(flags, trainer, "test", result, label_list)
    return result
