"""The report a person reads: one self-contained report.html per build folder (and per fine-tune run)."""
