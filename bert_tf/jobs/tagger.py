"""Token tagging (POS, NER, chunking) from CoNLL files: convert, train, evaluate, predict, save."""
import copy
import os

from absl import flags as absl_flags

from bert_tf import fileio, run_metadata
from bert_tf import flags as flag_groups
from bert_tf.data import tagging as data
from bert_tf.data import report as data_report
from bert_tf.errors import UserError
from bert_tf.jobs import common, finetune
from bert_tf.modeling.tasks import TokenTagger
from bert_tf.training import metrics, run_lock

PREDICTIONS_FILE = "test_predictions.conll"


def define_flags(fv=absl_flags.FLAGS):
    flag_groups.define_model_flags(fv)
    flag_groups.define_training_flags(fv, learning_rate=5e-5)
    flag_groups.define_strategy_flags(fv)
    flag_groups.define_finetune_flags(
        fv, data_format="CoNLL, token<TAB>tag per line (or CoNLL-2003 'token POS chunk NER'), a blank line "
        "between sentences", predictions_file=PREDICTIONS_FILE, length_buckets="32,64,128,256,512")
    absl_flags.DEFINE_list("labels", None, "The tag set, in id order (default: sorted tags of the training data).",
                           flag_values=fv)
    flag_groups.check_ranges(fv)


def _sentences(flags, split, path, require_tags=True):
    if not path:
        raise UserError(f"--{split}_file is required with --do_{ {'dev': 'eval', 'test': 'predict'}.get(split, split) }")
    return data.read_conll(path, require_tags=require_tags, encoding=flags.encoding)


def _check_head(init_meta, label_list):
    """A fine-tuned tagger's head only fits the same tag set."""
    if not init_meta or init_meta.get("task") != "tagging":
        return
    if init_meta.get("labels") and init_meta["labels"] != label_list:
        raise UserError(f"--init_checkpoint was fine-tuned for tags {init_meta['labels']}, but this run has "
                        f"{label_list}: start from the pretrained model instead, or pass --labels in the "
                        "checkpoint's order")


@run_lock.holding_output_dir
def run(flags):
    """The run_tagger job; returns {'train'/'eval'/'test': results} for what was asked."""
    started = run_metadata.now()
    finetune.check_outputs(flags)
    # Before any TensorFlow work: multi-worker collectives are configured when the strategy is built.
    strategy = common.strategy_from(flags)
    setup = common.resolve_model(flags)
    data_report.report_job_data(flags, setup.tokenizer, "tagging", strategy)
    init_meta = finetune.init_meta(setup.init_checkpoint)
    label_list = list(flags.labels) if flags.labels else None
    if init_meta and init_meta.get("task") == "tagging" and not flags.do_train:
        label_list = label_list or init_meta.get("labels")
    cache_dir = flags.cache_dir or os.path.join(flags.output_dir, "cache")

    train_stats = None
    if flags.do_train:
        sentences = _sentences(flags, "train", flags.train_file)
        if flags.max_train_examples:
            sentences = sentences[: flags.max_train_examples]
        label_list = label_list or data.label_list_from(sentences)
        unknown = sorted({t for s in sentences for t in s.tags} - set(label_list))
        if unknown:
            raise UserError(f"training tags {unknown[:5]} are not in --labels {label_list}: add them")
        if len(label_list) < 2:
            raise UserError(f"the training data has one tag ({label_list}): tagging needs two or more")
        train_records, train_stats = data.cached_records(sentences, [flags.train_file], cache_dir, "train",
                                                         setup.tokenizer, flags.max_seq_length, label_list)
    if not label_list:
        raise UserError("the tag set is unknown: pass --labels, or an --init_checkpoint fine-tuned by run_tagger")
    _check_head(init_meta, label_list)
    # Words cut off by truncation still need a prediction: the tag meaning "nothing" when there is one.
    fallback = "O" if "O" in label_list else label_list[0]

    def model_fn():
        # Tag names in config.json let Hugging Face pipelines loading the saved model print them.
        config = copy.deepcopy(setup.config)
        config.id2label = dict(enumerate(label_list))
        config.label2id = {tag: i for i, tag in enumerate(label_list)}
        return common.load_init(TokenTagger(config, num_labels=len(label_list)), setup)

    trainer, num_train_steps = finetune.make_trainer(flags, strategy, model_fn, setup,
                                                     train_stats["num_examples"] if flags.do_train else None)
    spec = data.feature_spec(flags.max_seq_length)

    def dataset_fn_for(path, is_training, batch_size):
        # Trimmed evaluation batches come back zero-padded to a common width; word_predictions
        # reads only each sentence's own word starts, which all lie before the cut.
        return finetune.dataset_fn_for(flags, spec, path, is_training, batch_size, finetune.length_buckets(flags),
                                       data.SEQUENCE_KEYS)

    def predict_tags(split, sentences, source):
        path, stats = data.cached_records(sentences, [source], cache_dir, split, setup.tokenizer,
                                          flags.max_seq_length, label_list)
        if all(s.tags for s in sentences):
            finetune.check_scorable(f"--{split}_file", source, stats, label_list,
                                    sum(len(s.tags) for s in sentences))
        outputs = finetune.predict(flags, trainer, dataset_fn_for(path, False, flags.eval_batch_size),
                                   len(sentences), keep_features=("label_ids",))
        predicted = data.word_predictions(outputs["label_ids"], outputs["logits"], label_list,
                                          [len(s.words) for s in sentences], fallback)
        return predicted, stats

    def score(sentences, predicted, stats):
        result = metrics.tagging_metrics([s.tags for s in sentences], predicted, label_list)
        result.update({k: stats[k] for k in ("truncated", "truncated_words", "unseen_labels")})
        if stats["unseen_labels"]:
            result["unseen_label_values"] = stats["unseen_label_values"]
        return result

    dev_sentences = None
    if flags.do_eval or (flags.do_train and flags.eval_every_steps):
        dev_sentences = _sentences(flags, "dev", flags.dev_file)

    def evaluate():
        return score(dev_sentences, *predict_tags("dev", dev_sentences, flags.dev_file))

    results = {}
    if flags.do_train:
        results["train"] = finetune.train_and_save(
            flags, trainer, setup, dataset_fn_for(train_records, True, flags.train_batch_size), num_train_steps,
            train_stats, evaluate if dev_sentences else None,
            meta={"task": "tagging", "labels": label_list, "max_seq_length": flags.max_seq_length})
    if flags.do_eval:
        results["eval"] = finetune.evaluate_once(results, evaluate)
        finetune.write_results(flags, trainer, "eval", results["eval"])
    if flags.do_predict:
        sentences = _sentences(flags, "test", flags.test_file, require_tags=False)
        predicted, stats = predict_tags("test", sentences, flags.test_file)
        has_tags = all(s.tags for s in sentences)
        if trainer.is_chief:
            fileio.write_text(os.path.join(flags.output_dir, PREDICTIONS_FILE),
                              format_predictions(sentences, predicted))
        if has_tags:
            results["test"] = score(sentences, predicted, stats)
            finetune.write_results(flags, trainer, "test", results["test"])
    run_metadata.write(flags, results, started, trainer.is_chief, labels=label_list)
    return results


def format_predictions(sentences, predicted):
    """CoNLL text: token<TAB>gold<TAB>predicted (token<TAB>predicted without gold), blank line between."""
    lines = []
    for sentence, tags in zip(sentences, predicted):
        for index, (word, tag) in enumerate(zip(sentence.words, tags)):
            lines.append("\t".join([word, sentence.tags[index], tag] if sentence.tags else [word, tag]))
        lines.append("")
    return "\n".join(lines) + "\n"
