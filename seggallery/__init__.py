"""SegGallery: compare pretrained semantic segmentation models side by side."""

__version__ = "0.1.0"
