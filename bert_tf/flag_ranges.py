"""Allowed values of the scripts' flags: checked when the flags are parsed (one line naming the flag),
and shown by ``--help``."""
import math

from absl import flags

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
    **{name: _POSITIVE for name in ("learning_rate", "num_train_epochs", "lora_alpha", "timeout", "adam_epsilon",
                                    "head_lr_multiplier")},
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
