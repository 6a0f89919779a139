"""SWAG-style multiple choice: convert, train, evaluate, predict, save."""
import csv
import io
import os

import numpy as np
from absl import flags as absl_flags

from bert_tf import fileio, run_metadata
from bert_tf import flags as flag_groups
from bert_tf.data import multiple_choice as data
from bert_tf.data import report as data_report
from bert_tf.errors import UserError
from bert_tf.jobs import common, finetune
from bert_tf.modeling.tasks import MultipleChoice
from bert_tf.training import run_lock

PREDICTIONS_FILE = "test_predictions.tsv"


def define_flags(fv=absl_flags.FLAGS):
    flag_groups.define_model_flags(fv)
    flag_groups.define_training_flags(fv, learning_rate=5e-5, batch_size=16)
    flag_groups.define_strategy_flags(fv)
    flag_groups.define_finetune_flags(fv, data_format="SWAG-style .csv/.tsv (header) or .jsonl: context, optional "
                                      "question prefix, ending0..endingN-1, label", predictions_file=PREDICTIONS_FILE)
    f = absl_flags
    f.DEFINE_string("context_column", "sent1", "Field holding the context (SWAG: sent1).", flag_values=fv)
    f.DEFINE_string("question_column", "sent2", "Field put before every ending (SWAG: sent2); empty for none.",
                    flag_values=fv)
    f.DEFINE_string("label_column", "label", "Field holding the index of the right ending.", flag_values=fv)
    flag_groups.check_ranges(fv)


@run_lock.holding_output_dir
def run(flags):
    """The run_multiple_choice job; returns {'train'/'eval'/'test': results} for what was asked."""
    started = run_metadata.now()
    finetune.check_outputs(flags)
    # Before any TensorFlow work: multi-worker collectives are configured when the strategy is built.
    strategy = common.strategy_from(flags)
    setup = common.resolve_model(flags)
    data_report.report_job_data(flags, setup.tokenizer, "multiple_choice", strategy)
    cache_dir = flags.cache_dir or os.path.join(flags.output_dir, "cache")
    init_meta = finetune.init_meta(setup.init_checkpoint)

    def load(split, require_label=True):
        path = {"train": flags.train_file, "dev": flags.dev_file, "test": flags.test_file}[split]
        if not path:
            raise UserError(f"--{split}_file is required with --do_{ {'dev': 'eval', 'test': 'predict'}.get(split, split) }")
        examples = data.read_examples(path, flags.context_column, flags.question_column, flags.label_column,
                                      require_label, encoding=flags.encoding)
        if split == "train" and flags.max_train_examples:
            examples = examples[: flags.max_train_examples]
        record_path, stats = data.cached_records(examples, [path], cache_dir, split, setup.tokenizer,
                                                 flags.max_seq_length)
        return examples, record_path, stats

    splits = {}
    if flags.do_train:
        splits["train"] = load("train")
    if flags.do_eval or (flags.do_train and flags.eval_every_steps):
        splits["dev"] = load("dev")
    if flags.do_predict:
        splits["test"] = load("test", require_label=False)
    counts = {len(examples[0].endings) for examples, _, _ in splits.values()}
    if init_meta and init_meta.get("task") == "multiple_choice":
        counts.add(init_meta["num_choices"])
    if len(counts) != 1:
        raise UserError(f"the files (and --init_checkpoint) disagree on the number of choices {sorted(counts)}: "
                        "use one number of endings throughout")
    num_choices = counts.pop()

    def model_fn():
        return common.load_init(MultipleChoice(setup.config, num_choices=num_choices), setup)

    trainer, num_train_steps = finetune.make_trainer(flags, strategy, model_fn, setup,
                                                     splits["train"][2]["num_examples"] if flags.do_train else None)
    spec = data.feature_spec(num_choices, flags.max_seq_length)

    def dataset_fn_for(path, is_training, batch_size):
        return finetune.dataset_fn_for(flags, spec, path, is_training, batch_size)

    def evaluate(split):
        examples, path, stats = splits[split]
        outputs = finetune.predict(flags, trainer, dataset_fn_for(path, False, flags.eval_batch_size), len(examples),
                                   keep_features=("label_ids",))
        gold = outputs["label_ids"].reshape(-1)
        labelled = gold >= 0
        predicted = outputs["probabilities"].argmax(-1)
        result = None
        if labelled.any():
            result = {"accuracy": float(np.mean(gold[labelled] == predicted[labelled])),
                      "num_examples": int(labelled.sum()), "truncated": stats["truncated"]}
        return result, outputs["probabilities"]

    results = {}
    if flags.do_train:
        results["train"] = finetune.train_and_save(
            flags, trainer, setup, dataset_fn_for(splits["train"][1], True, flags.train_batch_size), num_train_steps,
            splits["train"][2], (lambda: evaluate("dev")[0]) if "dev" in splits else None,
            meta={"task": "multiple_choice", "num_choices": num_choices, "max_seq_length": flags.max_seq_length})
    if flags.do_eval:
        results["eval"] = finetune.evaluate_once(results, lambda: evaluate("dev")[0])
        finetune.write_results(flags, trainer, "eval", results["eval"])
    if flags.do_predict:
        results["test"], probabilities = evaluate("test")
        if trainer.is_chief:
            fileio.write_text(os.path.join(flags.output_dir, PREDICTIONS_FILE),
                              _format_predictions(splits["test"][0], probabilities))
        finetune.write_results(flags, trainer, "test", results["test"])
    run_metadata.write(flags, results, started, trainer.is_chief)
    return results


def _format_predictions(examples, probabilities):
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter="\t", quoting=csv.QUOTE_NONE, escapechar="\\", lineterminator="\n")
    writer.writerow(["context", "gold", "predicted", "probability", "predicted_ending"])
    for example, row in zip(examples, probabilities):
        best = int(np.argmax(row))
        writer.writerow([example.context, "" if example.label is None else example.label, best, f"{row[best]:.6f}",
                         example.endings[best]])
    return buffer.getvalue()
