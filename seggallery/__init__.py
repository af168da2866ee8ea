"""SegGallery: compare pretrained semantic segmentation models side by side."""

__version__ = "0.1.0"

from .safety import enforce_weights_only_loading

# Anything this package loads with torch.load (its own code, torchvision, timm, transformers) gets
# weights only, never pickled code: see seggallery.safety.
enforce_weights_only_loading()
