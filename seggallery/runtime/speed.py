"""How a model runs fast: precision choice, memory format, compilation and the fp32-agreement check.

The engine applies these to every Segmenter after loading it, whatever its backend:
- reduced precision by autocast (bf16 or fp16 on a GPU, bf16 on a CPU with native bf16 instructions),
  unless the catalog entry opts out (`precision = "fp32"` with a reason) or the model's mask agrees with
  its own fp32 mask on fewer than AGREEMENT_THRESHOLD of the pixels of a calibration photo; the verdict
  is kept on disk (PrecisionChecks) so that the fp32 reference run is paid once per weights and device;
- channels_last weights and inputs for convolutional models (the layout oneDNN and cuDNN prefer);
- cuDNN autotuning on a GPU, and torch.compile on request (never on ZeroGPU, where it is not allowed).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from ..cache import cache_dir

PRECISIONS = ("fp32", "bf16", "fp16")
AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
AGREEMENT_THRESHOLD = 0.995  # share of pixels whose class must equal the fp32 mask's
CALIBRATION_PHOTO = Path(__file__).resolve().parents[2] / "assets" / "examples" / "street-city.jpg"


def _flag(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    return value.strip().lower() not in ("0", "false", "no", "off")


@dataclass(frozen=True)
class SpeedOptions:
    """What the engine may do to a model to make it faster. `optimize=False` runs it exactly as upstream."""

    optimize: bool = True  # False: fp32 eager, upstream memory layout (what the benchmark calls the baseline)
    precision: str = "auto"  # auto: the fastest the device and the catalog entry allow; or fp32 / bf16 / fp16
    channels_last: bool = True
    compile: bool = False  # torch.compile: large speed-ups, but a long first call per input shape
    check_agreement: bool = True  # compare with fp32 on a calibration photo before trusting a reduced precision
    fast_convolutions: bool = True  # CPU: autocast weights cast once; dilated convolutions as taps where faster
    time_choices: bool = True  # with the check: time plain fp32 and the tuned runs, keep the fastest that agrees

    def __post_init__(self):
        if self.precision not in ("auto", *PRECISIONS):
            raise ValueError(f"precision must be auto, fp32, bf16 or fp16, not {self.precision!r}")

    @classmethod
    def from_env(cls) -> SpeedOptions:
        """$SEGGALLERY_OPTIMIZE, _PRECISION, _CHANNELS_LAST, _COMPILE, _PRECISION_CHECK (1/0)."""
        return cls(
            optimize=_flag("SEGGALLERY_OPTIMIZE", True),
            precision=os.environ.get("SEGGALLERY_PRECISION", "auto").strip().lower() or "auto",
            channels_last=_flag("SEGGALLERY_CHANNELS_LAST", True),
            compile=_flag("SEGGALLERY_COMPILE", False),
            check_agreement=_flag("SEGGALLERY_PRECISION_CHECK", True),
            fast_convolutions=_flag("SEGGALLERY_FAST_CONVOLUTIONS", True),
            time_choices=_flag("SEGGALLERY_TIME_CHOICES", True),
        )


def cpu_has_native_bf16() -> bool:
    """AVX512-BF16 or AMX-BF16: the CPUs on which bf16 convolutions and matmuls beat fp32.

    Elsewhere oneDNN emulates bf16 and autocast only adds conversions, so the CPU stays in fp32.
    """
    capabilities = getattr(torch.cpu, "get_capabilities", None)
    if capabilities is not None:
        flags = capabilities()
        return bool(flags.get("avx512_bf16") or flags.get("amx_bf16"))
    check = getattr(torch.cpu, "_is_avx512_bf16_supported", None)
    return bool(check and check())


def cuda_has_bf16(device: torch.device) -> bool:
    """Ampere and newer run bf16 natively; older GPUs (T4, V100) only emulate it."""
    return torch.cuda.get_device_capability(device)[0] >= 8


def fastest_precision(device: torch.device) -> str:
    if device.type == "cuda":
        return "bf16" if cuda_has_bf16(device) else "fp16"
    if device.type == "cpu":
        return "bf16" if cpu_has_native_bf16() else "fp32"
    return "fp32"  # MPS: autocast there is not covered by our checks yet


def choose_precision(requested: str, fastest: str, allowed: str) -> tuple[str, str]:
    """(precision, why) from what was asked for, the device's fastest, and the catalog's limit.

    `allowed` is the catalog entry's `precision`: "auto" (anything), "bf16" (bf16 or fp32: fp16's
    narrow range overflows in this model) or "fp32" (no reduced precision at all).
    """
    wanted = fastest if requested == "auto" else requested
    if wanted == "fp32":
        return "fp32", "fp32 requested" if requested == "fp32" else "this device has no fast reduced precision"
    if allowed == "fp32" or (allowed == "bf16" and wanted == "fp16"):
        return "fp32", f"the catalog entry allows {allowed} only"
    return wanted, "requested" if requested != "auto" else "fastest on this device"


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """torch.autocast for bf16 / fp16, nothing for fp32: convolutions and matmuls run in the reduced type,
    reductions and normalisations in fp32, as autocast's op lists decide."""
    dtype = AUTOCAST_DTYPES.get(precision)
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def has_convolutions(module: torch.nn.Module) -> bool:
    return any(isinstance(layer, torch.nn.Conv2d) for layer in module.modules())


def map_tensors(value: Any, fn) -> Any:
    """Apply `fn` to every tensor in a nest of dicts (transformers' ModelOutput too), lists and tuples."""
    if isinstance(value, torch.Tensor):
        return fn(value)
    if isinstance(value, Mapping):
        converted = {key: map_tensors(item, fn) for key, item in value.items()}
        try:
            return type(value)(**converted)  # ModelOutput and other dataclass-like mappings
        except TypeError:
            return converted
    if isinstance(value, (list, tuple)):
        return type(value)(map_tensors(item, fn) for item in value)
    return value


def to_channels_last(value: Any) -> Any:
    """4-D floating tensors (images, feature maps) to channels_last; everything else untouched."""
    return map_tensors(
        value,
        lambda t: t.contiguous(memory_format=torch.channels_last) if t.dim() == 4 and t.is_floating_point() else t,
    )


def to_float32(value: Any) -> Any:
    """Reduced-precision outputs back to fp32, so that resizing and argmax see the same type as fp32 runs."""
    return map_tensors(value, lambda t: t.float() if t.dtype in (torch.bfloat16, torch.float16) else t)


def mask_agreement(a: torch.Tensor | np.ndarray, b: torch.Tensor | np.ndarray) -> float:
    """Share of pixels with the same class in two label maps of the same size."""
    a_np = a.cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)
    b_np = b.cpu().numpy() if isinstance(b, torch.Tensor) else np.asarray(b)
    if a_np.shape != b_np.shape:
        raise ValueError(f"masks of different sizes: {a_np.shape} and {b_np.shape}")
    return float((a_np == b_np).mean()) if a_np.size else 1.0


def weights_fingerprint(module: torch.nn.Module) -> str:
    """A cheap identity of a model's numbers (names, shapes and a sample of values of every tensor).

    Keys the stored precision checks, so that a verdict measured on other weights (an update, or the
    tests' random ones) is never reused.
    """
    digest = hashlib.sha1()
    for name, tensor in module.state_dict().items():
        flat = tensor.detach().reshape(-1)
        step = max(1, flat.numel() // 16)
        sample = flat[::step][:16].to("cpu", torch.float64)
        digest.update(f"{name}{tuple(tensor.shape)}".encode())
        digest.update(sample.numpy().tobytes())
    return digest.hexdigest()[:16]


def device_label(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda:{torch.cuda.get_device_name(device)}"
    if device.type == "cpu":
        return f"cpu:{torch.backends.cpu.get_cpu_capability()}:{'bf16' if cpu_has_native_bf16() else 'nobf16'}"
    return device.type


class PrecisionChecks:
    """Measured fp32-agreement of reduced-precision runs, one JSON file, keyed by model, weights, device.

    The file is small and written atomically; two processes writing at once can lose one entry, which
    only means that check runs again.
    """

    def __init__(self, path: Path | None = None):
        self.path = path or cache_dir() / "precision-checks.json"
        self._lock = threading.Lock()

    @staticmethod
    def key(model_id: str, fingerprint: str, device: torch.device, precision: str) -> str:
        return f"{model_id}|{fingerprint}|{device_label(device)}|{precision}|torch {torch.__version__}"

    def _read(self) -> dict:
        try:
            return json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}

    def get(self, key: str) -> dict | None:
        return self._read().get(key)

    def put(self, key: str, entry: dict) -> None:
        with self._lock:
            data = self._read()
            data[key] = entry
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                with tempfile.NamedTemporaryFile("w", dir=self.path.parent, delete=False, suffix=".tmp") as f:
                    json.dump(data, f, indent=1, sort_keys=True)
                os.replace(f.name, self.path)
            except OSError:
                pass  # a read-only cache only costs a repeated check


def calibration_photo() -> np.ndarray | None:
    """The photo reduced precision is checked on: a real street scene (many classes, many edges)."""
    if not CALIBRATION_PHOTO.is_file():
        return None
    from ..images import load_image

    return load_image(CALIBRATION_PHOTO).pixels


def enable_cudnn_autotune() -> None:
    """cuDNN tries its convolution algorithms on the first call of each input shape and keeps the fastest."""
    torch.backends.cudnn.benchmark = True


def compile_module(module: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """torch.compile with weights frozen into the graph (inference only: constant folding, conv+BN fusion,
    prepacked oneDNN weights on a CPU). Compilation happens on the first call of each input shape."""
    import torch._inductor.config as inductor_config

    inductor_config.freezing = True
    return torch.compile(module)  # static for the first shape, dynamic (no per-shape recompiles) after
