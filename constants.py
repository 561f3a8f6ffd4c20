"""Named sets shared by every part of the framework, defined once."""

# Active-learning methods: the paper's six (method-spec section 4.1), then the standard
# strategies of the other systems (strategies.md sections 3-9).
WSL = "WSL"
RANDOM = "Random"
ENTROPY = "Entropy"
MC_DROPOUT = "MC_Dropout"
LABEL_PROP = "Label_prop"
FULL_SUP = "Full_sup"
LEAST_CONFIDENCE = "Least_confidence"
MARGIN = "Margin"
MC_ENTROPY = "MC_entropy"
MC_BALD = "MC_BALD"
ENSEMBLE = "Ensemble"
CORESET = "Coreset"
HU = "HU"
HU_KNN = "HU_kNN"
LL4AL = "LL4AL"
DAL = "DAL"
PAPER_METHODS = (WSL, RANDOM, ENTROPY, MC_DROPOUT, LABEL_PROP, FULL_SUP)
METHODS = (*PAPER_METHODS, LEAST_CONFIDENCE, MARGIN, MC_ENTROPY, MC_BALD, ENSEMBLE, CORESET, HU, HU_KNN, LL4AL, DAL)
# How stage 1 (the WSL round) localises: WILDCAT's class maps, or seed 003's min-max entropy localiser
# (docs of tasks/joint/wsl_methods.py). Stage 2 starts from the theta0 of the configured one.
WSL_WILDCAT = "wildcat"
WSL_MINMAX = "minmax_entropy"
WSL_METHODS = (WSL_WILDCAT, WSL_MINMAX)
# Min-max entropy: the foreground map is min-max normalised over the whole batch (the reference code) or
# per image (the paper's text).
NORMALISE_BATCH = "batch"
NORMALISE_IMAGE = "image"
MINMAX_NORMALISATIONS = (NORMALISE_BATCH, NORMALISE_IMAGE)
# Dense-CRF parameter sets of the reference code (engine/crf.py).
CRF_PRESETS = ("glas", "cub", "default")
# Methods that run a single round (no acquisition).
SINGLE_ROUND_METHODS = (WSL, FULL_SUP)
# Methods that score the pool with stochastic forward passes (they train with dropout on).
MC_METHODS = (MC_DROPOUT, MC_ENTROPY, MC_BALD)
# Active-learning methods whose oracle can pick image regions: their strategy scores pixels (or, for
# Random, draws regions at random); the others score whole images.
PIXEL_METHODS = (RANDOM, ENTROPY, LEAST_CONFIDENCE, MARGIN, MC_DROPOUT, MC_ENTROPY, MC_BALD, ENSEMBLE)

# What the oracle annotates: whole images, or superpixel regions of images (strategies.md 10).
UNIT_IMAGE = "image"
UNIT_REGION = "region"
ANNOTATION_UNITS = (UNIT_IMAGE, UNIT_REGION)
SUPERPIXEL_METHODS = ("slic", "watershed")
# Mask value of the pixels the oracle has not revealed (partial masks of region-level AL).
IGNORE = 255
# Region budget: as many regions, or as many pixels, as the images a round of image-level AL picks.
REGION_BUDGET_UNITS = ("regions", "pixels")

# Who answers the oracle's requests: the dataset's own masks, or a person through files or a Label Studio
# server's API (oracles/).
ORACLE_SIMULATED = "simulated"
ORACLE_FILES = "files"
ORACLE_LABEL_STUDIO = "label_studio"
ORACLES = (ORACLE_SIMULATED, ORACLE_FILES, ORACLE_LABEL_STUDIO)
# Where a mask came from (RoundState.annotations): the dataset, a PNG answer, a Label Studio annotation.
SOURCE_SIMULATED = "simulated"
SOURCE_FILE = "file"
SOURCE_LABEL_STUDIO = "label_studio"
# Exit codes of main.py: 2 bad input (nothing written), 3 waiting for a person's answers, 130 interrupted
# (Ctrl-C, the shell's code for SIGINT; the same command resumes).
EXIT_BAD_INPUT = 2
EXIT_WAITING = 3
EXIT_INTERRUPTED = 130

# Datasets with a reader.
SYNTHETIC = "synthetic"
GLAS = "glas"
CUB = "cub"
PH2 = "ph2"
OXFORD_FLOWERS = "oxford-flowers-102"
GENERIC = "generic"
# Classification-only datasets, read into arrays from their official files (data/arrays.py).
DIGITS = "digits"
CIFAR10 = "cifar10"
MNIST = "mnist"
EMNIST = "emnist"
CLASSIFICATION_DATASETS = (DIGITS, CIFAR10, MNIST, EMNIST)
# Multi-class semantic segmentation datasets (data/segmentation.py): label maps of K classes.
SCENES = "scenes"
CITYSCAPES = "cityscapes"
VOC = "voc"
SEGMENTATION_DATASETS = (SCENES, CITYSCAPES, VOC)
DATASETS = (SYNTHETIC, GLAS, CUB, PH2, OXFORD_FLOWERS, GENERIC, *CLASSIFICATION_DATASETS, *SEGMENTATION_DATASETS)
# The original's spellings of dataset names (and of their YAML files).
DATASET_ALIASES = {"Caltech-UCSD-Birds-200-2011": CUB, "Oxford-flowers-102": OXFORD_FLOWERS}

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

# Scores over stochastic passes or ensemble members (strategies.md section 4).
SCORE_ENTROPY = "entropy"
SCORE_VARIANCE = "variance"
SCORE_BALD = "bald"
MC_SCORES = (SCORE_VARIANCE, SCORE_BALD)          # MC_Dropout's mc_score
ENSEMBLE_SCORES = (SCORE_ENTROPY, SCORE_BALD, SCORE_VARIANCE)

# Hidden Uncertainty's greedy PCA search: the criterion that picks the dimension (strategies.md 9).
HU_PCA_METRICS = ("val", "L2", "L1", "val_l2", "train_val_l2")

# Segmentation-loss normalisation (see losses/hybrid.py).
NORM_SAMPLE = "sample"
NORM_GROUP = "group"
SEG_LOSS_NORMS = (NORM_SAMPLE, NORM_GROUP)

# Learning-rate schedules.
SCHEDULERS = ("mystep", "none")

# Image resampling filters accepted for the one-off rescaling of images.
SCALE_ALGOS = ("LANCZOS", "BICUBIC", "BILINEAR", "NEAREST")
PADDING_MODES = ("reflect", "constant", "replicate")

# Devices.
DEVICES = ("auto", "cpu", "cuda")
# keep_models: which finished rounds keep their model file (round_<r>/model.pt).
KEEP_ALL, KEEP_LAST, KEEP_NONE = "all", "last", "none"
KEEP_MODELS = (KEEP_ALL, KEEP_LAST, KEEP_NONE)

# Tasks: joint classification and segmentation (masks from the oracle), classification (class
# labels from the oracle; strategies score class-probability vectors and features), or multi-class
# semantic segmentation (K-class label maps from the oracle, no image label).
TASK_JOINT = "joint"
TASK_CLASSIFICATION = "classification"
TASK_SEGMENTATION = "segmentation"
TASKS = (TASK_JOINT, TASK_CLASSIFICATION, TASK_SEGMENTATION)
# The original's configuration files name the joint task this way.
TASK_ALIASES = {"SEGMENTATION": TASK_JOINT}
# Methods of the classification task (WSL and Label_prop need masks); Full_sup labels the whole pool.
CLASSIFICATION_METHODS = (FULL_SUP, RANDOM, LEAST_CONFIDENCE, MARGIN, ENTROPY, MC_DROPOUT, MC_ENTROPY, MC_BALD,
                          ENSEMBLE, CORESET, HU, HU_KNN, LL4AL, DAL)
# Classification models LL4AL runs on: torchvision's ResNets, whose four residual stages feed its loss-prediction
# module (ResNet, ResNeXt, Wide ResNet).
LL4AL_MODEL_PREFIXES = ("resnet", "resnext", "wide_resnet")
# Methods of the segmentation task: strategies over per-pixel class distributions and pooled features.
SEGMENTATION_METHODS = (FULL_SUP, RANDOM, ENTROPY, LEAST_CONFIDENCE, MARGIN, MC_ENTROPY, MC_BALD, MC_DROPOUT, ENSEMBLE,
                        CORESET)
# Why a classification study stopped (RoundState.stop_reason).
STOP_PATIENCE = "patience"
STOP_EXHAUSTED = "pool exhausted"
STOP_ROUNDS = "max_al_its reached"
