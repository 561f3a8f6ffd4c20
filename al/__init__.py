"""Active-learning steps: acquisition scores, selection of the samples to annotate, and pairing of
unlabelled samples with labelled class-mates for pseudo-labelling."""
