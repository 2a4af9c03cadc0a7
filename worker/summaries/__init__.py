"""Daily and monthly summaries: recomputed for the days that changed, verified, and read as usage totals."""
