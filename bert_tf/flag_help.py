"""``--help`` for the scripts: their docstring, then their own flags by help group with defaults and
allowed values.

Each ``define_*`` function in bert_tf/flags.py is decorated with ``grouped(group)``, which files the
flags it defines under that group, so the listing needs no table kept in step with the definitions;
``NAME_GROUPS`` places flags whose group differs from their function's, and flags the jobs and
scripts define themselves.
"""
import functools
import inspect
import sys
import textwrap

from bert_tf.flag_ranges import range_help

HELP_GROUPS = ("data", "model", "training", "distribution", "output", "task")
# Flag name -> help group, filled as the define_* functions run (first group wins).
_FLAG_GROUPS = {}
NAME_GROUPS = {
    "data": ("train_file", "dev_file", "test_file", "predict_file", "input_file", "eval_input_file", "data_dir",
             "task_name", "max_train_examples", "cache_dir", "length_buckets", "skip_corrupt_records", "tfds_name",
             "tfds_data_dir", "text_column", "text_pair_column", "label_column", "labels", "doc_stride",
             "max_query_length", "version_2_with_negative", "max_predictions_per_seq", "dynamic_masking",
             "masked_lm_prob", "gzip", "input_format", "output_file", "vocab_size", "min_frequency", "random_seed",
             "dupe_factor", "short_seq_prob", "do_whole_word_mask", "num_output_shards", "num_workers",
             "max_eval_steps", "encoding", "pre_segmented", "group_by_length", "pack_sequences"),
    "model": ("task_type", "model_config", "init_checkpoint", "bert_config_file", "vocab_file", "do_lower_case",
              "max_seq_length", "allow_partial_init"),
    "training": ("do_train", "do_eval", "do_predict", "num_train_steps", "num_warmup_steps", "eval_steps",
                 "gradient_accumulation_steps", "predict_batch_size"),
    "output": ("output_dir", "save_checkpoints_steps", "log_steps", "overwrite_output_dir", "n_best_size",
               "max_answer_length", "null_score_diff_threshold", "verbose_logging", "export_dir", "model_dir",
               "output_format", "log_file"),
}
_NAME_GROUP = {name: group for group, names in NAME_GROUPS.items() for name in names}


def grouped(group):
    """Files every flag the decorated ``define_*(fv, ...)`` function defines under ``group``."""
    def decorate(define):
        signature = inspect.signature(define)

        @functools.wraps(define)
        def wrapped(*args, **kwargs):
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            fv = bound.arguments["fv"]
            before = set(fv)
            result = define(*args, **kwargs)
            for name in set(fv) - before:
                _FLAG_GROUPS.setdefault(name, group)
            return result
        return wrapped
    return decorate


def group_of(name):
    """The help group of flag ``name``: its explicit one, else its define_* function's, else by its name."""
    if name in _NAME_GROUP:
        return _NAME_GROUP[name]
    if name in _FLAG_GROUPS:
        return _FLAG_GROUPS[name]
    if name.endswith(("_file", "_files", "_dir", "_column")):
        return "data"
    if name.endswith(("_steps", "_batch_size", "_epochs")):
        return "training"
    return "task"


def _is_alias(flag):
    return type(flag).__name__ == "_FlagAlias"


def script_flags(fv):
    """The flags a script defined itself (bert_tf modules and the script), not absl's or TensorFlow's."""
    main = sys.argv[0] if sys.argv else ""
    own = {}
    for module, module_flags in fv.flags_by_module_dict().items():
        if module.startswith("bert_tf") or module in (main, "__main__") or module.startswith("tools"):
            for flag in module_flags:
                own[flag.name] = flag
    return own


def _default_text(flag):
    value = flag.default
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return str(value)


def help_text(fv, doc=None, width=100):
    """``--help``: the script's docstring as written, then its own flags by group with their defaults."""
    lines = [doc.strip("\n"), ""] if doc else []
    own = script_flags(fv)
    aliases = sorted((name, flag) for name, flag in own.items() if _is_alias(flag))
    by_group = {}
    for name, flag in sorted(own.items()):
        if not _is_alias(flag):
            by_group.setdefault(group_of(name), []).append(flag)
    for group in HELP_GROUPS:
        if group not in by_group:
            continue
        lines.append(f"{group} flags:" if group != "task" else "other flags:")
        for flag in by_group[group]:
            default = _default_text(flag)
            name = f"[no]{flag.name}" if flag.flag_type() == "bool" else flag.name
            lines.append(f"  --{name}" + (f" (default: {default})" if default not in (None, "") else ""))
            text = " ".join(part for part in (flag.help or "", range_help(flag.name)) if part)
            lines.extend(textwrap.wrap(text, width=width, initial_indent="      ", subsequent_indent="      "))
        lines.append("")
    if aliases:
        names = ", ".join(f"--{name} (= --{flag.help.rsplit('--', 1)[-1].rstrip('.')})" for name, flag in aliases)
        lines.extend(textwrap.wrap("google-research/bert names also accepted: " + names, width=width))
        lines.append("")
    lines.append("Flags may also come from --flagfile=FILE (one --flag=value per line); --helpfull lists "
                 "absl's and TensorFlow's flags too.")
    return "\n".join(lines)
