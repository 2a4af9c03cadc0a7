"""The ledger: priced usage events and call attempts, how they are written, priced and repriced."""
