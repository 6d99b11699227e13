"""The search, pure: the population (islands, archive, selection), the loop (plan and record), tuning (optuna)."""
