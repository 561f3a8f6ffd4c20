"""Datasets: readers per layout, folds, synthetic set, decode-once cache, geometry, augmentation."""
