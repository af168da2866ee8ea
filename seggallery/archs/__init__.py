"""Our own nn.Modules, for checkpoints whose library is not a dependency of SegGallery.

Each module is small enough to read in a minute and names its sub-modules as the original code did,
so that the published state_dicts load as they are and forward hooks can address every stage.
"""
