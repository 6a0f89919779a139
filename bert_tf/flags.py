"""Flag groups shared by the tools/ scripts; names follow google-research/bert where it has one.

Definitions live in functions taking a ``FlagValues`` so modules import without side effects
and tests can build private flag sets. Each ``define_*`` function files the flags it defines under
a help group (data, model, training, distribution, output), so ``--help`` lists a script's own flags
by group without a list to keep in step; ``NAME_GROUPS`` places flags whose group differs from their
function's, and flags defined by the jobs and scripts themselves.
"""
import functools
import inspect
import sys
import textwrap

from absl import flags

from bert_tf import distribute
from bert_tf.training import optimization

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
             "max_eval_steps", "encoding", "pre_segmented"),
    "model": ("task_type", "model_config", "init_checkpoint", "bert_config_file", "vocab_file", "do_lower_case",
              "max_seq_length", "allow_partial_init"),
    "training": ("do_train", "do_eval", "do_predict", "num_train_steps", "num_warmup_steps", "eval_steps",
                 "gradient_accumulation_steps", "predict_batch_size"),
    "output": ("output_dir", "save_checkpoints_steps", "log_steps", "overwrite_output_dir", "n_best_size",
               "max_answer_length", "null_score_diff_threshold", "verbose_logging", "export_dir", "model_dir",
               "output_format", "log_file"),
}
_NAME_GROUP = {name: group for group, names in NAME_GROUPS.items() for name in names}
ENCODING_HELP = ("Encoding of the input text files (default: UTF-8, with or without a BOM; UTF-16 with a BOM is "
                 "recognised). Chinese files are often gb18030 (a superset of GBK and GB2312) or big5.")


def _grouped(group):
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


@_grouped("distribution")
def define_strategy_flags(fv=flags.FLAGS):
    flags.DEFINE_enum("strategy", "auto", list(distribute.STRATEGIES),
                      "Distribution: auto picks a TPU when --tpu is set, then GPUs, then the CPU.", flag_values=fv)
    flags.DEFINE_string("tpu", None, "TPU name, grpc://address, or 'local' on a TPU VM / Colab TPU runtime.",
                        flag_values=fv)
    flags.DEFINE_integer("num_gpus", None, "Use only the first N GPUs (default: all visible).", flag_values=fv)
    flags.DEFINE_enum("mixed_precision", "no", ["no", "fp16", "bf16"],
                      "Mixed precision: fp16 (GPUs, with loss scaling) or bf16 (TPUs, recent GPUs, CPUs with "
                      "AVX512_BF16 or AMX).", flag_values=fv)
    flags.DEFINE_bool("jit_compile", False, "Compile the training step with XLA.", flag_values=fv)
    flags.DEFINE_integer("steps_per_execution", 1, "Training steps run per tf.function call (raise on TPUs).",
                         flag_values=fv)
    # google-research/bert's TPUEstimator flags, with the same meaning (checked in jobs.common.strategy_from).
    flags.DEFINE_alias("iterations_per_loop", "steps_per_execution", flag_values=fv)
    flags.DEFINE_alias("tpu_name", "tpu", flag_values=fv)
    flags.DEFINE_bool("use_tpu", False, "Train on a TPU (google-research/bert's switch; the same as --strategy=tpu, "
                      "with --tpu_name, or the local TPU without it). Stops with an error when no TPU is found.",
                      flag_values=fv)
    flags.DEFINE_string("tpu_zone", None, "GCE zone of a --tpu_name TPU (default: found from the metadata server).",
                        flag_values=fv)
    flags.DEFINE_string("gcp_project", None, "GCP project of a --tpu_name TPU (default: found from the metadata "
                        "server).", flag_values=fv)
    flags.DEFINE_string("master", None, "grpc:// address of the TPU worker, instead of --tpu_name (with --use_tpu).",
                        flag_values=fv)
    flags.DEFINE_integer("num_tpu_cores", None, "With --use_tpu: the TPU cores to train on; must equal the cores of "
                         "the TPU found (google-research/bert's default 8 is not assumed).", flag_values=fv)


@_grouped("model")
def define_model_flags(fv=flags.FLAGS):
    flags.DEFINE_string("init_checkpoint", None,
                        "Starting weights: a Hugging Face/bert_tf model directory, a directory with "
                        "model.safetensors, a keras-hub BERT preset, a google-research/bert TF1 or TF Model Garden "
                        "TF2 checkpoint, or hub:<id> (the only form that downloads).", flag_values=fv)
    flags.DEFINE_bool("allow_partial_init", False,
                      "Start the encoder weights --init_checkpoint lacks (or has in another shape) from scratch "
                      "instead of stopping. Off: every encoder weight must come from the checkpoint.", flag_values=fv)
    flags.DEFINE_string("bert_config_file", None,
                        "Model config: a preset name (tiny, mini, small, medium, base, large) or a JSON file. "
                        "Defaults to the config stored with --init_checkpoint.", flag_values=fv)
    flags.DEFINE_string("vocab_file", None,
                        "WordPiece vocab.txt. Defaults to the one stored with --init_checkpoint.", flag_values=fv)
    flags.DEFINE_bool("do_lower_case", None,
                      "Lower-case input text. Defaults to --init_checkpoint's tokenizer config, else to what the "
                      "vocab shows (capitalised word pieces: cased); a value contradicting either is refused.",
                      flag_values=fv)
    flags.DEFINE_integer("max_seq_length", 128, "Maximum total input length in WordPiece tokens.", flag_values=fv)


@_grouped("training")
def define_training_flags(fv=flags.FLAGS, learning_rate=5e-5, batch_size=32):
    flags.DEFINE_string("output_dir", None, "Where checkpoints, logs, results and the final model go.",
                        flag_values=fv)
    flags.DEFINE_integer("train_batch_size", batch_size, "Global training batch size (all replicas).",
                         flag_values=fv)
    flags.DEFINE_integer("eval_batch_size", 64, "Global evaluation/prediction batch size.", flag_values=fv)
    flags.DEFINE_float("learning_rate", learning_rate, "Peak learning rate of AdamW.", flag_values=fv)
    flags.DEFINE_enum("optimizer", "adamw", ["adamw", "lamb"], "Optimizer (LAMB for very large batches).",
                      flag_values=fv)
    flags.DEFINE_float("weight_decay", 0.01, "Decoupled weight decay (not on LayerNorm and biases).",
                       flag_values=fv)
    flags.DEFINE_float("clip_norm", 1.0, "Clip the global gradient norm to this before each update "
                       "(google-research/bert's 1.0); 0 turns clipping off.", flag_values=fv)
    define_schedule_flags(fv)
    flags.DEFINE_integer("save_checkpoints_steps", 1000, "Save a checkpoint every N steps.", flag_values=fv)
    flags.DEFINE_integer("log_steps", 50, "Log metrics every N steps (TensorBoard and train_metrics.jsonl).",
                         flag_values=fv)
    flags.DEFINE_enum("nan_policy", "stop", ["stop", "skip_batch"],
                      "On a NaN/Inf loss: stop with the step number, or skip that batch's update.", flag_values=fv)
    flags.DEFINE_bool("overwrite_output_dir", False,
                      "Run even if another process holds --output_dir's lock.", flag_values=fv)
    flags.DEFINE_integer("seed", 42, "Random seed for initialisation and data order.", flag_values=fv)
    flags.DEFINE_bool("skip_corrupt_records", False,
                      "Train past corrupt TFRecord files (each is read up to its first bad record; what is "
                      "skipped is reported and counted) instead of stopping with the file and record index.",
                      flag_values=fv)


@_grouped("training")
def define_schedule_flags(fv=flags.FLAGS):
    """The learning-rate schedule after warmup; unset knobs take the defaults in training/optimization.py."""
    flags.DEFINE_enum("lr_schedule", None, list(optimization.SCHEDULES),
                      "Learning rate after the linear warmup (default: linear). linear and polynomial decay to "
                      "--lr_end at the last step, polynomial as (1 - progress)**--lr_power; cosine follows half a "
                      "cosine wave down to --lr_end; cosine_with_restarts runs --num_cycles such waves, each "
                      "restarting at --learning_rate; constant stays at --learning_rate.", flag_values=fv)
    flags.DEFINE_float("lr_end", None, "Learning rate at the last step of linear, polynomial and cosine schedules "
                       "(default: 0).", flag_values=fv)
    flags.DEFINE_float("lr_power", None, "Exponent of --lr_schedule=polynomial (default: 1, a straight line).",
                       flag_values=fv)
    flags.DEFINE_integer("num_cycles", None, "Cosine waves of --lr_schedule=cosine_with_restarts (default: 1).",
                         flag_values=fv)


def define_peft_flags(fv=flags.FLAGS):
    """Parameter-efficient fine-tuning (applied by jobs.common.load_init; see bert_tf/modeling/lora.py)."""
    flags.DEFINE_integer("lora_rank", 0, "LoRA rank on the attention query/value projections (0: off). The "
                         "encoder is frozen; only the LoRA matrices and the task head train. Saved models and "
                         "exports hold the merged weights.", flag_values=fv)
    flags.DEFINE_float("lora_alpha", 16.0, "LoRA scaling numerator: the update is (lora_alpha / lora_rank) * A B.",
                       flag_values=fv)
    flags.DEFINE_bool("freeze_encoder", False, "Train the task head only (the whole encoder frozen).",
                      flag_values=fv)
    flags.DEFINE_bool("freeze_embeddings", False,
                      "Keep the embedding tables fixed. AdamW otherwise updates the whole word-embedding matrix "
                      "(about half of a small BERT's weights) every step, which dominates step time on CPUs.",
                      flag_values=fv)
    flags.DEFINE_integer("freeze_layers", 0,
                         "Keep the embeddings and the lowest N encoder layers fixed. Backpropagation then stops "
                         "above them, so a step costs less (with half the layers frozen, about a third less).",
                         flag_values=fv)


@_grouped("training")
def define_finetune_flags(fv=flags.FLAGS, data_format="the task's format", predictions_file="predictions",
                          length_buckets=None):
    """Data files, do_* switches, epochs/steps, evaluation schedule and parameter-efficient training shared
    by the fine-tuning scripts.

    ``length_buckets`` (a default like "32,64,128") also defines --length_buckets.
    """
    flags.DEFINE_string("train_file", None, f"Training data: {data_format}.", flag_values=fv)
    flags.DEFINE_string("dev_file", None, "Evaluation data for --do_eval, same format.", flag_values=fv)
    flags.DEFINE_string("test_file", None, "Prediction data for --do_predict, same format (gold optional).",
                        flag_values=fv)
    flags.DEFINE_bool("do_train", False, "Fine-tune on --train_file.", flag_values=fv)
    flags.DEFINE_bool("do_eval", False, "Evaluate on --dev_file; writes eval_results.json.", flag_values=fv)
    flags.DEFINE_bool("do_predict", False, f"Predict --test_file; writes {predictions_file} (+ test_results.json "
                      "when it has gold answers).", flag_values=fv)
    flags.DEFINE_float("num_train_epochs", 3.0, "Training epochs (ignored when --num_train_steps is set).",
                       flag_values=fv)
    flags.DEFINE_integer("num_train_steps", None, "Training steps (default: from --num_train_epochs).",
                         flag_values=fv)
    flags.DEFINE_integer("max_train_examples", None, "Use only the first N training examples.", flag_values=fv)
    flags.DEFINE_float("warmup_proportion", 0.1, "Fraction of steps with linear learning-rate warmup.",
                       flag_values=fv)
    flags.DEFINE_float("layerwise_lr_decay", 1.0,
                       "Layer-wise learning-rate decay: encoder layer i of L trains at learning_rate * "
                       "decay**(L - i), the embeddings at decay**(L + 1), the task head at the full rate. "
                       "1 turns it off; 0.8-0.95 are usual.", flag_values=fv)
    flags.DEFINE_integer("eval_every_steps", None, "Evaluate on --dev_file every N steps (default: at the end).",
                         flag_values=fv)
    flags.DEFINE_string("metric_for_best_model", None,
                        "Keep the checkpoint best on this eval metric and use it for eval/predict/save.",
                        flag_values=fv)
    flags.DEFINE_integer("early_stopping_patience", None, "Stop after N evaluations without improvement.",
                         flag_values=fv)
    flags.DEFINE_string("cache_dir", None, "Where converted TFRecords are cached (default: output_dir/cache).",
                        flag_values=fv)
    flags.DEFINE_string("encoding", None, ENCODING_HELP, flag_values=fv)
    if length_buckets is not None:
        flags.DEFINE_list("length_buckets", length_buckets,
                          "Batch training examples by length, padded to the smallest of these bounds that fits "
                          "(bounds above --max_seq_length are dropped). Empty: pad to --max_seq_length.",
                          flag_values=fv)
    define_peft_flags(fv)


# ---- value ranges: checked when the flags are parsed, shown by --help ------------------------------
# Flag name -> (low, high, low_open, high_open, what the message says); None: no bound on that side.
# A value out of range (NaN and infinities included) stops parsing with one line naming the flag.
_POSITIVE = (0, None, True, False, "positive")
_COUNT = (1, None, False, False, "positive")
_NON_NEGATIVE = (0, None, False, False, "at least 0")
_FRACTION = (0, 1, False, False, "between 0 and 1")
_OPEN_FRACTION = (0, 1, True, False, "in (0, 1]")
RANGES = {
    **{name: _COUNT for name in (
        "train_batch_size", "eval_batch_size", "predict_batch_size", "num_train_steps", "save_checkpoints_steps",
        "log_steps", "steps_per_execution", "eval_every_steps", "eval_steps", "max_eval_steps", "max_train_examples",
        "early_stopping_patience", "gradient_accumulation_steps", "n_best_size", "max_answer_length", "doc_stride",
        "max_query_length", "max_predictions_per_seq", "dupe_factor", "num_output_shards", "num_workers",
        "vocab_size", "min_frequency", "num_gpus", "num_tpu_cores", "version", "model_version")},
    **{name: _NON_NEGATIVE for name in ("num_warmup_steps", "lora_rank", "freeze_layers", "weight_decay",
                                                     "clip_norm")},
    **{name: _POSITIVE for name in ("learning_rate", "num_train_epochs", "lora_alpha", "timeout")},
    **{name: _FRACTION for name in ("warmup_proportion", "short_seq_prob")},
    **{name: _OPEN_FRACTION for name in ("masked_lm_prob", "layerwise_lr_decay")},
    # numpy's generators take seeds in [0, 2**32).
    "seed": (0, 2 ** 32 - 1, False, False, "between 0 and 4294967295"),
    "random_seed": (0, 2 ** 32 - 1, False, False, "between 0 and 4294967295"),
    "null_score_diff_threshold": (None, None, False, False, "a finite number"),
}
# List flags whose entries must be distinct and non-empty ("int": also positive integers).
LISTS = {"labels": "str", "length_buckets": "int"}


def range_problem(name, value):
    """Why ``value`` is not allowed for flag ``name`` (one line, no fix needed beyond the range), or None."""
    import math

    if value is None:
        return None
    if name in LISTS:
        seen = set()
        for entry in value:
            entry = str(entry).strip()
            if not entry:
                return f"--{name} has an empty entry: remove the extra comma"
            if LISTS[name] == "int" and (not entry.lstrip("-").isdigit() or int(entry) <= 0):
                return f"--{name} entry {entry!r} must be a positive integer"
            key = int(entry) if LISTS[name] == "int" else entry
            if key in seen:
                return f"--{name} lists {entry!r} twice: give each entry once"
            seen.add(key)
        return None
    low, high, low_open, high_open, text = RANGES[name]
    if isinstance(value, float) and not math.isfinite(value):
        return f"--{name}={value} must be {text} (a finite number)"
    if (low is not None and (value < low or (low_open and value == low))) or \
            (high is not None and (value > high or (high_open and value == high))):
        return f"--{name}={value} must be {text}"
    return None


def check_ranges(fv):
    """Registers the range check of every flag of ``fv`` named in RANGES/LISTS (once per flag), so a bad
    value stops parsing (and later assignment) with ``range_problem``'s line. Scripts get it from
    ``cli.run``; the jobs' define_flags call it for in-process use."""
    for name in [n for n in (*RANGES, *LISTS) if n in fv]:
        flag = fv[name]
        if any(getattr(v.checker, "range_of", None) == name for v in flag.validators
               if hasattr(v, "checker")):
            continue

        def checker(value, name=name):
            problem = range_problem(name, value)
            if problem:
                raise flags.ValidationError(problem)
            return True

        checker.range_of = name
        flags.register_validator(name, checker, flag_values=fv)


def range_help(name):
    """--help's note on a flag's allowed values ('' when it has none)."""
    if name in LISTS:
        return "Entries distinct" + (", positive integers." if LISTS[name] == "int" else ".")
    if name in RANGES:
        return f"Must be {RANGES[name][4]}."
    return ""


def flag_error_line(error):
    """absl's 'flag --x=v: <problem>' for a rejected value -> the problem alone (it names the flag)."""
    text = str(error)
    match = text.split(": ", 1)
    return match[1] if len(match) == 2 and match[0].startswith("flag --") and match[1].startswith("--") else text
