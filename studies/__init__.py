"""Whole studies: datasets x methods x seeds as jobs of main.py calls with their dependencies
(studies/plan.py), run on this machine (studies/local.py) and reported (studies/status.py)."""
