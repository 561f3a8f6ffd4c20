"""Curves, tables and checks of finished active-learning runs (plot_active_learning_curves.py)."""
