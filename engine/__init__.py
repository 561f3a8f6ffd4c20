"""Training, evaluation and scoring with the hybrid model on device-resident data."""
