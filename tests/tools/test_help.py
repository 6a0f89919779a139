"""--help of the tools/ scripts: the script's own flags by group with defaults, examples as written,
and a quiet start-up (no TensorFlow CUDA/oneDNN notices on a machine without a GPU)."""
import os
import subprocess
import sys

from absl import flags

from bert_tf import flag_help
from bert_tf import flags as flag_groups
from tests import workloads

REPO = workloads.REPO


def _help(*argv):
    """Starts each command at once (they run side by side), then collects (returncode, stdout, stderr)."""
    env = workloads.tool_env()
    env.pop("TF_CPP_MIN_LOG_LEVEL")  # the default a user has: bert_tf must quiet TensorFlow itself
    processes = [subprocess.Popen([sys.executable, os.path.join(REPO, "tools", script), *args], cwd=REPO, env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for script, *args in argv]
    results = []
    for process in processes:
        out, err = process.communicate(timeout=120)
        results.append((process.returncode, out, err))
    return results


def test_help_lists_the_scripts_own_flags_by_group():
    (rc, out, err), (rc_pre, out_pre, err_pre), (rc_bench, out_bench, _) = _help(
        ("run_classifier.py", "--help"), ("run_pretraining.py", "--help"), ("benchmark.py", "--help"))
    assert rc == rc_pre == rc_bench == 0
    # The docstring's example keeps its line break (it used to be joined into one line).
    assert "--train_file=train.tsv \\\n    --dev_file=dev.tsv" in out
    headings = [line for line in out.splitlines() if line.endswith(" flags:")]
    assert headings == ["data flags:", "model flags:", "training flags:", "distribution flags:", "output flags:"]
    section = out.split("data flags:")[1].split("model flags:")[0]
    assert "  --task_name\n" in section and "  --train_file\n" in section
    assert "  --max_seq_length (default: 128)\n" in out and "  --[no]do_train (default: false)\n" in out
    assert "--iterations_per_loop (= --steps_per_execution)" in out
    # absl's and TensorFlow's own flags are not the script's.
    assert "--logtostderr" not in out and "--tt_check_filter" not in out
    # run_pretraining: its google-research/bert switches, no fine-tuning-only flags.
    assert "  --[no]do_eval (default: false)\n" in out_pre and "  --num_warmup_steps (default: 10000)\n" in out_pre
    assert "--lora_rank" not in out_pre and "--freeze_layers" not in out_pre and "--task_name" not in out_pre
    for name in ("finetune", "serving", "pretraining_data", "pretraining_step"):
        assert f"\n  {name} " in out_bench
    for stderr in (err, err_pre):
        assert "cuInit" not in stderr and "oneDNN" not in stderr and "absl::InitializeLog" not in stderr, stderr


def test_flags_land_in_their_define_functions_group():
    fv = flags.FlagValues()
    flag_groups.define_model_flags(fv)
    flag_groups.define_training_flags(fv)
    flag_groups.define_strategy_flags(fv)
    flag_groups.define_finetune_flags(fv)
    assert flag_help.group_of("init_checkpoint") == "model"
    assert flag_help.group_of("learning_rate") == flag_help.group_of("lora_rank") == "training"
    assert flag_help.group_of("use_tpu") == flag_help.group_of("strategy") == "distribution"
    # Explicit placements win over the function's group.
    assert flag_help.group_of("output_dir") == "output" and flag_help.group_of("train_file") == "data"
    # A flag no define_* function made falls back on its name.
    assert flag_help.group_of("some_input_file") == "data" and flag_help.group_of("foo") == "task"
