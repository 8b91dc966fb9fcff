# Operator console (console/): the browser app, built into console/dist and served by the API under /console/.
.PHONY: console console-api console-check console-test

CONSOLE := console
NPM := npm --prefix $(CONSOLE)

$(CONSOLE)/node_modules/.package-lock.json: $(CONSOLE)/package.json $(CONSOLE)/package-lock.json
	$(NPM) ci --no-audit --no-fund
	touch $@

# The typed client's source: the OpenAPI document built from the app itself (no server), then its TypeScript types.
console-api: $(STAMP) $(CONSOLE)/node_modules/.package-lock.json
	$(BIN)/python scripts/dump_openapi.py $(CONSOLE)/openapi.json
	$(NPM) run --silent gen:api

# Type-checks and builds console/dist (and copies the OpenAPI page's Swagger UI files into it).
console: $(CONSOLE)/node_modules/.package-lock.json
	$(NPM) run --silent build

# The committed client must match the API: regenerate into var/ and fail on any difference.
console-check: $(STAMP) $(CONSOLE)/node_modules/.package-lock.json
	mkdir -p var/console
	$(BIN)/python scripts/dump_openapi.py var/console/openapi.json
	cd $(CONSOLE) && npx --no-install openapi-typescript ../var/console/openapi.json -o ../var/console/schema.d.ts
	@diff -q $(CONSOLE)/openapi.json var/console/openapi.json >/dev/null && \
	 diff -q $(CONSOLE)/src/api/schema.d.ts var/console/schema.d.ts >/dev/null || \
	 { diff -u $(CONSOLE)/openapi.json var/console/openapi.json | head -40; \
	   echo "console/openapi.json or console/src/api/schema.d.ts is stale: run make console-api and commit"; exit 1; }

console-test: $(CONSOLE)/node_modules/.package-lock.json
	$(NPM) run --silent test

test: console console-check console-test
demo: console
