"""Rate-limit and budget windows, the tiers accounts belong to, and the budgets enforced on them."""
