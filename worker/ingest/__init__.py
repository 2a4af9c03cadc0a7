"""Where raw usage records come from: files (jsonl, csv) and application tables."""
