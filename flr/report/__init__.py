"""Report rendering: figures (PNG bytes) from arrays and geometry; no file is written here."""
