# Recording and evidence (dvr/): its benchmark, and the recorder process for the demo.
BENCHES += bench-dvr
.PHONY: bench-dvr dvr

bench-dvr: $(STAMP)
	$(BIN)/python -m bench.dvr

# The recorder alone (make demo starts the platform; this runs one more recorder beside it).
dvr: $(STAMP)
	$(BIN)/python -m dvr
