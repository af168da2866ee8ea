"""torchvision's instance segmentation models (Mask R-CNN) as a Segmenter: the objects, and their semantic reading.

torchvision documents the inference as `weights.transforms()` on the image, `model([image])`, and
`masks > 0.5` on the soft masks it pastes back at the image's size. That is exactly what runs here; the
model itself normalises and resizes inside (GeneralizedRCNNTransform) and maps its results back to the
photo's size.

Label ids: the models' labels index torchvision's 91-entry COCO category list (`weights.meta["categories"]`,
with '__background__' at 0 and 10 'N/A' slots for ids COCO never used). They are mapped by name onto
the catalog's contiguous `coco80` label set (background 0, the 80 classes 1..80 in the same order). An
'N/A' slot has no class: the trained weights never predict one, and a detection with such a label
(possible with random weights) is dropped from the instances and from the semantic reading.

Host synchronisation: the detector synchronises inside its own forward (score filtering, NMS and the
per-image top-k read sizes back); on top of that, the instances are downloaded once (masks, and boxes,
scores and labels in one table), beside the label map's download that every prediction makes.
"""

from __future__ import annotations

import numpy as np
import torch

from ..catalog import LabelSet, ModelSpec
from ..runtime.results import Instances
from ..runtime.segmenter import Segmenter
from ..runtime.semantic_reading import DEFAULT_SCORE_THRESHOLD, semantic_reading

MASK_THRESHOLD = 0.5  # torchvision: "masks > 0.5" turns the soft masks into binary ones
NO_CLASS = -1  # a torchvision label id that names no class of the label set ('N/A')


def label_lookup(categories: list[str], labels: LabelSet) -> torch.Tensor:
    """torchvision's category list -> a table from its label ids to the label set's ids (NO_CLASS for 'N/A')."""
    names = [name.strip() for name in labels.names]
    table = []
    for category in categories:
        name = "background" if category == "__background__" else category
        table.append(names.index(name) if name in names else NO_CLASS)
    known = [category for category in categories if category not in ("N/A", "__background__")]
    if sorted(set(known)) != sorted(set(names) - {"background"}):
        raise ValueError(f"label set {labels.id} does not name exactly the model's categories")
    return torch.tensor(table, dtype=torch.int64)


class TorchvisionInstanceSegmenter(Segmenter):
    """Mask R-CNN: `forward` gives torchvision's detections for the photo; `instances` the objects,
    `postprocess` the semantic reading at `score_threshold`."""

    def __init__(self, spec: ModelSpec, module: torch.nn.Module, device: torch.device, weights,
                 score_threshold: float = DEFAULT_SCORE_THRESHOLD):
        super().__init__(spec, module, device)
        self.transforms = weights.transforms()  # ObjectDetection: uint8 -> float in [0, 1]
        self.lookup = label_lookup(weights.meta["categories"], spec.label_set).to(device)
        self.score_threshold = score_threshold

    def preprocess(self, image: np.ndarray) -> list[torch.Tensor]:
        """weights.transforms() on the device: the photo as a 3 x H x W float tensor, in a list as the model takes it."""
        return [self.transforms(self.upload(image).permute(2, 0, 1).contiguous())]

    def forward(self, inputs: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        return self.module(inputs)[0]  # boxes, labels, scores, masks (N x 1 x H x W probabilities)

    def class_scores(self, outputs) -> None:
        return None  # no per-pixel class scores: no confidence or entropy maps

    def _binary_masks(self, outputs: dict[str, torch.Tensor], size: tuple[int, int]) -> torch.Tensor:
        masks = outputs["masks"][:, 0]
        if tuple(masks.shape[-2:]) != tuple(size):
            raise ValueError(f"the model's masks are {tuple(masks.shape[-2:])}, not the photo's {tuple(size)}")
        return masks > MASK_THRESHOLD

    def postprocess(self, outputs: dict[str, torch.Tensor], size: tuple[int, int]) -> torch.Tensor:
        """The semantic reading: each pixel the class of the best instance over the threshold covering it."""
        return semantic_reading(self._binary_masks(outputs, size), self.lookup[outputs["labels"]], outputs["scores"],
                                size, background=0, threshold=self.score_threshold)

    def instances(self, outputs: dict[str, torch.Tensor], size: tuple[int, int]) -> Instances:
        """Every detection torchvision returns (its own score floor, 0.05), best first, at the photo's size."""
        labels = self.lookup[outputs["labels"]]
        table = torch.cat([outputs["boxes"].float(), outputs["scores"].float()[:, None], labels.float()[:, None]], 1)
        table = table.to("cpu", non_blocking=True)
        masks = self._binary_masks(outputs, size).to("cpu").numpy()  # the one download (it completes `table`)
        table = table.numpy()
        keep = table[:, 5] != NO_CLASS
        order = np.argsort(-table[keep, 4], kind="stable")
        kept = table[keep][order]
        return Instances(masks[keep][order], kept[:, 5].astype(np.int64), kept[:, 4].astype(np.float32),
                         kept[:, :4].astype(np.float32))
