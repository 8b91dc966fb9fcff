# Recording and evidence (dvr/): its benchmark, and the recorder process for the demo.
BENCHES += bench-dvr
.PHONY: bench-dvr dvr

bench-dvr: $(STAMP)
	$(BIN)/python -m bench.dvr

# The recorder alone (make demo starts the platform; this runs one more recorder beside it).
dvr: $(STAMP)
	$(BIN)/python -m dvr

# Privacy masks: CPU of the masked re-encode vs the stream copy on the same cameras, leaks and PSNR
# (bench/results/masks.json).
BENCHES += bench-masks
.PHONY: bench-masks
bench-masks: $(STAMP)
	$(BIN)/python -m bench.masks
