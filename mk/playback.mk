# Playback in the browser: the browser tests load hls.js from tests/browser's lockfile (no CDN at test time).
BROWSER_TEST_JS := tests/browser/node_modules/.package-lock.json

$(BROWSER_TEST_JS): tests/browser/package.json tests/browser/package-lock.json
	npm ci --prefix tests/browser --no-audit --no-fund --silent

test: $(BROWSER_TEST_JS)
