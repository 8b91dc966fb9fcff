# Billing (billing/): its benchmark, a month for 200 tenants and 2 000 cameras, PDFs included.
BENCHES += bench-billing
.PHONY: bench-billing

bench-billing: $(STAMP)
	$(BIN)/python -m bench.billing
