"""Browser tests of the dashboard: Playwright driving Debian's Chromium against a real
`factflow serve --embedded` (skipped, saying why, without Chromium or Playwright)."""
