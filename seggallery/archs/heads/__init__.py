"""mmsegmentation's decode heads, one file each, by the names mmseg's configs give them."""

from .aspp import ASPPHead
from .cc import CCHead
from .common import DecodeHead
from .da import DAHead
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
    "DAHead": DAHead,
    "CCHead": CCHead,
}

__all__ = ["DECODE_HEADS", "ASPPHead", "CCHead", "DAHead", "DecodeHead", "DepthwiseSeparableASPPHead",
           "DepthwiseSeparableFCNHead", "FCNHead", "PSPHead", "UPerHead"]
