"""The training settings that every one-shot user declares alike (SPOS, DARTS, ``objective=supernet.*``).

Declared here once, torch-free, so a searcher or objective module can name them in its signature without
importing torch; ``training.Settings`` turns the chosen values into a recipe.
"""

from nas_lab.core.settings import Setting
from nas_lab.oneshot.augment import CHOICES

EPOCHS = Setting(ge=1, le=100_000, help="training epochs of the supernet (none: the space's recipe)")
BATCH_SIZE = Setting(ge=1, le=65_536, help="images per training batch")
LEARNING_RATE = Setting(gt=0, le=100, help="peak learning rate of the weights (none: the optimizer's default)")
MAX_BATCHES = Setting(ge=1, le=100_000_000, help="most batches per epoch (none: whole epochs)")
RECALIBRATION = Setting(ge=1, le=100_000, help="train batches that re-estimate BatchNorm per arch (none: the recipe's)")
GRAD_CLIP = Setting(gt=0, le=1e6, help="largest gradient norm a training step may take (none: no clipping)")
OPTIMIZER = Setting(choices=("auto", "sgd", "adamw"), help="weight optimizer (auto: the space's recipe)")
PRECISION = Setting(choices=("auto", "bf16", "fp16", "fp32"),
                    help="arithmetic of the training steps (auto: bf16 autocast on CUDA, fp32 on CPU)")
COMPILE = Setting(help="compile the training step with torch.compile (pays off for one arch or a mixture, "
                       "not for sampled paths)")
CHECKPOINT_EVERY = Setting(ge=1, le=100_000_000, help="training steps between checkpoints (none: at the end of "
                                                      "every epoch only)")
AUGMENT = Setting(choices=CHOICES,
                  help="augmentation of training batches (auto: the space's recipe on CUDA, none on CPU)")
WORKERS = Setting(ge=0, le=256, help="processes decoding the images of a dataset read from disk, per training process "
                                   "(none: up to 8 on CUDA, 0 on CPU)")
