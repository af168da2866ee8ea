"""mmseg: mmsegmentation's own model for the entry (built from the wheel's config, random weights), saved
as the model zoo saves it ({'meta', 'state_dict'}) under the published file name in $TORCH_HOME."""

from __future__ import annotations

import mmseg_reference
import torch

from seggallery.backends.mmseg import checkpoint_path


def write(spec) -> None:
    model = mmseg_reference.random_model(spec)
    path = checkpoint_path(spec)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(mmseg_reference.official_checkpoint(spec, model), path)
