"""Named sets shared by every part of the framework, defined once."""

# Active-learning methods (method-spec section 4.1).
WSL = "WSL"
RANDOM = "Random"
ENTROPY = "Entropy"
MC_DROPOUT = "MC_Dropout"
LABEL_PROP = "Label_prop"
FULL_SUP = "Full_sup"
METHODS = (WSL, RANDOM, ENTROPY, MC_DROPOUT, LABEL_PROP, FULL_SUP)
# Methods that run a single round (no acquisition).
SINGLE_ROUND_METHODS = (WSL, FULL_SUP)
# Methods whose oracle picks by a score computed with the current model.
SCORED_METHODS = (ENTROPY, MC_DROPOUT)

# Datasets with a reader.
SYNTHETIC = "synthetic"
GLAS = "glas"
CUB = "cub"
PH2 = "ph2"
OXFORD_FLOWERS = "oxford-flowers-102"
GENERIC = "generic"
DATASETS = (SYNTHETIC, GLAS, CUB, PH2, OXFORD_FLOWERS, GENERIC)
# The original's spellings of dataset names (and of their YAML files).
DATASET_ALIASES = {"Caltech-UCSD-Birds-200-2011": CUB, "Oxford-flowers-102": OXFORD_FLOWERS}

# Tasks and subtasks (the original's spellings).
SEGMENTATION = "SEGMENTATION"
TASKS = (SEGMENTATION,)
CLASSIFICATION = "CLASSIFICATION"
CL_SEG = "Classification_Segmentation"
SUBTASKS = (CLASSIFICATION, CL_SEG)

# Sample tags: L = pixel-labelled by the oracle, U = unlabelled, PL = pseudo-labelled.
L = 0
U = 1
PL = 2
TAGS = {"L": L, "U": U, "PL": PL}

# Dataset subsets.
TRAIN = "train"
VALID = "valid"
TEST = "test"
SUBSETS = (TRAIN, VALID, TEST)

# Acquisition scores for MC_Dropout.
MC_VARIANCE = "variance"
MC_BALD = "bald"
MC_SCORES = (MC_VARIANCE, MC_BALD)

# Segmentation-loss normalisation (see losses/hybrid.py).
NORM_SAMPLE = "sample"
NORM_GROUP = "group"
SEG_LOSS_NORMS = (NORM_SAMPLE, NORM_GROUP)

# Optimisers and schedules.
OPTIMISERS = ("sgd",)
SCHEDULERS = ("mystep", "none")

# Image resampling filters accepted for the one-off rescaling of images.
SCALE_ALGOS = ("LANCZOS", "BICUBIC", "BILINEAR", "NEAREST")
PADDING_MODES = ("reflect", "constant", "replicate")

# Devices.
DEVICES = ("auto", "cpu", "cuda")
