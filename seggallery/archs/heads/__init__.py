"""mmsegmentation's decode heads, one file each, by the names mmseg's configs give them."""

from .aspp import ASPPHead
from .common import DecodeHead
from .fcn import FCNHead
from .psp import PSPHead
from .sep_fcn import DepthwiseSeparableFCNHead
from .sep_aspp import DepthwiseSeparableASPPHead
from .uper import UPerHead

DECODE_HEADS: dict[str, type[DecodeHead]] = {
    "FCNHead": FCNHead,
    "PSPHead": PSPHead,
    "ASPPHead": ASPPHead,
    "DepthwiseSeparableASPPHead": DepthwiseSeparableASPPHead,
    "DepthwiseSeparableFCNHead": DepthwiseSeparableFCNHead,
    "UPerHead": UPerHead,
}

__all__ = ["DECODE_HEADS", "ASPPHead", "DecodeHead", "DepthwiseSeparableASPPHead", "DepthwiseSeparableFCNHead", "FCNHead", "PSPHead", "UPerHead"]
