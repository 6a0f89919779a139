"""Extractive question answering on SQuAD v1.1/v2.0 JSON: convert, train, evaluate, predict, save."""
import os

from absl import flags as absl_flags

from bert_tf import fileio, run_metadata
from bert_tf import flags as flag_groups
from bert_tf.data import squad as data
from bert_tf.data import report as data_report
from bert_tf.errors import UserError, warn
from bert_tf.jobs import common, finetune
from bert_tf.modeling.tasks import SpanQA
from bert_tf.training import metrics, run_lock


def define_flags(fv=absl_flags.FLAGS):
    flag_groups.define_model_flags(fv)
    flag_groups.define_training_flags(fv, learning_rate=5e-5, batch_size=32)
    flag_groups.define_strategy_flags(fv)
    flag_groups.define_finetune_flags(fv, data_format="SQuAD v1.1/v2.0 JSON",
                                      predictions_file="test_predictions.json and test_nbest_predictions.json")
    f = absl_flags
    f.DEFINE_string("predict_file", None, "google-research/bert's name for the evaluation file: the default of "
                    "--dev_file, and of --test_file with --do_predict.", flag_values=fv)
    f.DEFINE_integer("doc_stride", 128, "Context pieces between the starts of consecutive windows.", flag_values=fv)
    f.DEFINE_integer("max_query_length", 64, "Questions are cut to this many word pieces.", flag_values=fv)
    f.DEFINE_integer("max_answer_length", 30, "Longest answer predicted, in word pieces.", flag_values=fv)
    f.DEFINE_integer("n_best_size", 20, "Candidate starts/ends per window, and answers in the n-best file.",
                     flag_values=fv)
    f.DEFINE_bool("version_2_with_negative", False, "SQuAD v2.0: questions may have no answer (predict '').",
                  flag_values=fv)
    f.DEFINE_float("null_score_diff_threshold", 0.0, "v2.0: answer '' when the null score beats the best span "
                   "by more than this.", flag_values=fv)
    f.DEFINE_alias("predict_batch_size", "eval_batch_size", flag_values=fv)
    f.DEFINE_bool("verbose_logging", False, "Print a line for each data-processing notice: training answers "
                  "skipped because their text is not at answer_start, questions cut to --max_query_length.",
                  flag_values=fv)
    flag_groups.check_ranges(fv)


def _file(flags, split):
    path = {"train": flags.train_file, "dev": flags.dev_file or flags.predict_file,
            "test": flags.test_file or flags.predict_file}[split]
    if not path:
        switch = {"train": "--do_train", "dev": "--do_eval", "test": "--do_predict"}[split]
        raise UserError(f"--{split}_file is required with {switch}" + ("" if split == "train" else
                                                                       " (or --predict_file)"))
    return path


@run_lock.holding_output_dir
def run(flags):
    """The run_squad job; returns {'train'/'eval'/'test': results} for what was asked."""
    started = run_metadata.now()
    finetune.check_outputs(flags)
    for name in ("max_query_length", "max_answer_length", "n_best_size"):
        if getattr(flags, name) <= 0:
            raise UserError(f"--{name}={getattr(flags, name)} must be positive")
    # Before any TensorFlow work: multi-worker collectives are configured when the strategy is built.
    strategy = common.strategy_from(flags)
    setup = common.resolve_model(flags)
    data_report.report_job_data(flags, setup.tokenizer, "squad", strategy)
    cache_dir = flags.cache_dir or os.path.join(flags.output_dir, "cache")
    window_settings = {"max_seq_length": flags.max_seq_length, "doc_stride": flags.doc_stride,
                       "max_query_length": flags.max_query_length}

    def prepare(split, is_training):
        path = _file(flags, split)
        examples, skipped = data.read_squad(path, is_training, flags.version_2_with_negative,
                                           encoding=flags.encoding)
        if is_training and flags.max_train_examples:
            examples = examples[: flags.max_train_examples]
        windows, stats = data.convert_examples(examples, setup.tokenizer, flags.max_seq_length, flags.doc_stride,
                                               flags.max_query_length, is_training)
        stats["skipped_mismatched_answers"] = skipped
        if flags.verbose_logging:
            for count, what in ((skipped, "training answers skipped: their text is not at answer_start"),
                                (stats.get("truncated_questions", 0), f"questions cut to {flags.max_query_length} "
                                                                      "word pieces")):
                if count:
                    warn(f"{path}: {count} {what}")
        record_path, _ = data.cached_records(windows, stats, [path], cache_dir, split, setup.tokenizer,
                                             dict(window_settings, training=is_training,
                                                  v2=flags.version_2_with_negative))
        return examples, windows, record_path, stats

    train_stats = None
    if flags.do_train:
        _, _, train_records, train_stats = prepare("train", True)

    def model_fn():
        return common.load_init(SpanQA(setup.config), setup)

    trainer, num_train_steps = finetune.make_trainer(flags, strategy, model_fn, setup,
                                                     train_stats["num_windows"] if flags.do_train else None)
    spec = data.feature_spec(flags.max_seq_length)

    def dataset_fn_for(path, is_training, batch_size):
        return finetune.dataset_fn_for(flags, spec, path, is_training, batch_size)

    def answer(split, prepared, prefix):
        examples, windows, path, stats = prepared
        outputs = finetune.predict(flags, trainer, dataset_fn_for(path, False, flags.eval_batch_size), len(windows))
        predictions, nbest, null_odds = data.decode(
            examples, windows, outputs["start_logits"], outputs["end_logits"], flags.n_best_size,
            flags.max_answer_length, flags.version_2_with_negative, flags.null_score_diff_threshold)
        if trainer.is_chief:
            fileio.write_json(os.path.join(flags.output_dir, f"{prefix}predictions.json"), predictions)
            fileio.write_json(os.path.join(flags.output_dir, f"{prefix}nbest_predictions.json"), nbest)
            if flags.version_2_with_negative:
                fileio.write_json(os.path.join(flags.output_dir, f"{prefix}null_odds.json"), null_odds)
        gold = {e.qas_id: e.answers for e in examples}
        if not any(gold.values()) and not flags.version_2_with_negative:
            return None  # a file without answers: predictions only
        result = metrics.squad_metrics(gold, predictions)
        result.update(num_windows=stats["num_windows"], truncated_questions=stats["truncated_questions"])
        return result

    dev = prepare("dev", False) if flags.do_eval or (flags.do_train and flags.eval_every_steps) else None
    results = {}
    if flags.do_train:
        results["train"] = finetune.train_and_save(
            flags, trainer, setup, dataset_fn_for(train_records, True, flags.train_batch_size), num_train_steps,
            train_stats, (lambda: answer("dev", dev, "")) if dev else None,
            meta={"task": "squad", "max_answer_length": flags.max_answer_length,
                  "version_2_with_negative": flags.version_2_with_negative, **window_settings})
    if flags.do_eval:
        # predictions.json is rewritten by every evaluation, so it matches a reused one only without
        # --metric_for_best_model (which restores earlier weights).
        results["eval"] = answer("dev", dev, "") if flags.metric_for_best_model else \
            finetune.evaluate_once(results, lambda: answer("dev", dev, ""))
        finetune.write_results(flags, trainer, "eval", results["eval"])
    if flags.do_predict:
        # google-research/bert names its --predict_file output predictions.json; a --test_file's get test_.
        results["test"] = answer("test", prepare("test", False), "test_" if flags.test_file else "")
        finetune.write_results(flags, trainer, "test", results["test"])
    run_metadata.write(flags, results, started, trainer.is_chief)
    return results
