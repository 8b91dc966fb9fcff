"""Browser tests in Debian's Chromium driven by Playwright: what the console's media pages rely on."""
