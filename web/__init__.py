"""The console and the HTTP API: FastAPI over the books (imports worker/ and reports/, never the reverse)."""
