"""Op names a TensorFlow release registers, read from its wheel (or an installed `tensorflow/` folder).

The model server pinned in docker-compose.yml is built from an older TensorFlow than the one that
exports here; tests/export/test_serving_config.py checks every op of every export against the list
this writes for the server's release (serving/tensorflow-2.20.0-ops.txt):

    pip download --no-deps --only-binary=:all: --python-version 3.12 \
        --platform manylinux_2_17_x86_64 tensorflow==2.20.0 -d /tmp/tf
    python serving/tf_ops.py /tmp/tf/tensorflow-2.20.0-*.whl > serving/tensorflow-2.20.0-ops.txt

Every registered op has a generated Python wrapper (gen_*_ops.py) that builds it through
`_apply_op_helper("OpName", ...)`; those calls are the list. Run on TF 2.20.0 and 2.21.0 the lists
differ by one op (DecodeJxl, new in 2.21) and no op gained an input or attribute.
"""
import os
import re
import sys
import zipfile

_BUILDS = re.compile(r'_apply_op_helper\(\s*"(\w+)"')


def _sources(path):
    """(name, text) of every gen_*_ops.py in a wheel or below a folder."""
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as wheel:
            for name in wheel.namelist():
                if os.path.basename(name).startswith("gen_") and name.endswith("_ops.py"):
                    yield name, wheel.read(name).decode("utf-8")
        return
    for root, _, files in os.walk(path):
        for name in files:
            if name.startswith("gen_") and name.endswith("_ops.py"):
                with open(os.path.join(root, name), encoding="utf-8") as f:
                    yield name, f.read()


def registered_ops(path):
    return {op for _, text in _sources(path) for op in _BUILDS.findall(text)}


def read_list(path):
    with open(path, encoding="utf-8") as f:
        return {line.strip() for line in f if line.strip() and not line.startswith("#")}


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python serving/tf_ops.py TENSORFLOW_WHEEL_OR_DIR > LIST")
    found = registered_ops(sys.argv[1])
    if not found:
        sys.exit(f"error: no gen_*_ops.py in {sys.argv[1]} : pass a tensorflow wheel or its tensorflow/ folder")
    print(f"# ops registered by {os.path.basename(sys.argv[1])} (serving/tf_ops.py)")
    print("\n".join(sorted(found)))
