"""The web pages (registry/web/): desk, language, roles, security over HTTP, and in Chromium."""
