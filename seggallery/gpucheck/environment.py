"""Where the check runs: hermetic offline caches, the shared data folder, what is installed, the GPU.

Nothing here imports torch or a model library, so the check can say what is missing before anything loads.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import platform
import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TESTS = REPO / "tests"

# Import name -> distribution name of what the check uses when it is there, and what for.
OPTIONAL = {
    "segmentation_models_pytorch": ("segmentation-models-pytorch", "the smp-hub models"),
    "albumentations": ("albumentations", "the smp-hub models' preprocessing"),
    "gradio": ("gradio", "the served Compare (the app over HTTP)"),
    "pytest": ("pytest", "the GPU tests"),
    "pytest_timeout": ("pytest-timeout", "a time limit per GPU test"),
    "mmseg": ("mmsegmentation", "the mmseg fakes from mmseg's own modules (else stand-ins in the same format)"),
}
REPORTED = ("torch", "torchvision", "transformers", "timm", "huggingface-hub", "numpy", "pillow",
            "opencv-python-headless", "safetensors", "tokenizers")


# Settings that would change what the engine does: the check measures its defaults (each step says what it sets).
ENGINE_SETTINGS = ("SEGGALLERY_DEVICE", "SEGGALLERY_OPTIMIZE", "SEGGALLERY_PRECISION", "SEGGALLERY_CHANNELS_LAST",
                   "SEGGALLERY_COMPILE", "SEGGALLERY_PRECISION_CHECK", "SEGGALLERY_PRELOAD", "SEGGALLERY_GPU_CACHE_MB")


def hermetic_env(caches: Path, base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of every step: weights and SegGallery's cache inside `caches`, the Hub offline, the
    tests' fakes importable, the engine at its defaults. The layout is tests/conftest.py's, which uses these
    caches when SEGGALLERY_TEST_CACHES names them, so the GPU tests find the fakes this check wrote."""
    env = dict(os.environ if base is None else base)
    for name in ENGINE_SETTINGS:
        env.pop(name, None)
    path = [str(REPO), str(TESTS), *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
    env.update({
        "SEGGALLERY_TEST_CACHES": str(caches),
        "TORCH_HOME": str(caches / "torch"),
        "HF_HOME": str(caches / "hf"),
        "SEGGALLERY_CACHE_DIR": str(caches / "seggallery"),
        "GRADIO_TEMP_DIR": str(caches / "gradio"),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "GRADIO_ANALYTICS_ENABLED": "False",
        "PYTHONUNBUFFERED": "1",
        "PYTHONPATH": os.pathsep.join(path),
    })
    shared = shared_dir()
    if shared is not None:
        env["SEGGALLERY_SHARED"] = str(shared)
    return env


def shared_dir() -> Path | None:
    """The shared data folder (real ENet weights, CamVid photos): $SEGGALLERY_SHARED, else shared/ inside the
    checkout (what travels to a device machine), else ../shared beside it (a developer's machine, CI)."""
    explicit = os.environ.get("SEGGALLERY_SHARED")
    candidates = [Path(explicit)] if explicit else [REPO / "shared", REPO.parent / "shared"]
    return next((path for path in candidates if path.is_dir()), None)


def installed(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def importable(module: str) -> bool:
    """Whether `import module` would find it, without importing it (a broken install counts as absent)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def facts() -> dict:
    """Versions of what matters, which optional packages are there, the shared folder and the GPU as the
    driver sees it (nvidia-smi), for environment.json."""
    optional = {module: {"distribution": name, "version": installed(name) if importable(module) else None, "for": why}
                for module, (name, why) in OPTIONAL.items()}
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "packages": {name: installed(name) for name in REPORTED},
        "optional": optional,
        "shared": str(shared_dir()) if shared_dir() else None,
        "nvidia_smi": nvidia_smi(),
    }


def nvidia_smi() -> str | None:
    if shutil.which("nvidia-smi") is None:
        return None
    try:
        done = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total,driver_version,clocks.max.sm",
                               "--format=csv,noheader"], capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() or done.stderr.strip() or None
