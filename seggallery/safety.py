"""What may run: catalog models only, weights read as data (never as code), local files from one folder.

A public Space takes model ids and files from anonymous users. Nothing they send may choose code to run
or a file to read, so
- a model id must be a catalog id, and a backend builds only the catalog's own entry for it;
- Hub downloads come from repos that catalog entries name (backends.check_hub_file, derived from every
  backend's files()), by plain file names (no paths: check_hub_name);
- every torch.load in this process runs with weights_only=True (forced through torch's own switch, so
  library code that asks for a full unpickle, as torch.hub's loader does, gets weights only too);
- a local checkpoint is a plain file inside $SEGGALLERY_CHECKPOINT_DIR, reached without leaving it.
Transformers models are built from a named class with trust_remote_code left off (backends/transformers.py).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from .catalog import ModelSpec, catalog

CHECKPOINT_DIR_ENV = "SEGGALLERY_CHECKPOINT_DIR"
_HUB_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,95}")  # one segment of a Hub repo id
_HUB_FILE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,200}(/[A-Za-z0-9_][A-Za-z0-9._-]{0,200}){0,4}")


class ModelNotAllowed(ValueError):
    """A model id, spec or weight source this app will not load; the message says why."""


def enforce_weights_only_loading() -> None:
    """Make torch.load refuse pickled code everywhere in this process, whatever the caller passes.

    torch reads TORCH_FORCE_WEIGHTS_ONLY_LOAD at every call and then loads with weights_only=True even
    where a caller passed False (torch.hub.load_state_dict_from_url, which torchvision uses, does).
    """
    os.environ["TORCH_FORCE_WEIGHTS_ONLY_LOAD"] = "1"
    os.environ.pop("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", None)


def allowed_spec(model_id: object) -> ModelSpec:
    """The catalog entry for `model_id`, or ModelNotAllowed."""
    if not isinstance(model_id, str) or not model_id:
        raise ModelNotAllowed(f"a model id must be a catalog id (a non-empty string), not {type(model_id).__name__}")
    spec = catalog().get(model_id)
    if spec is None:
        shown = model_id if len(model_id) <= 80 else model_id[:77] + "..."
        raise ModelNotAllowed(f"unknown model id {shown!r}: only catalog models run here (`python -m seggallery models` lists them)")
    return spec


def check_catalog_spec(spec: ModelSpec) -> None:
    """A backend builds a spec only when it is exactly the catalog's entry (no edited source or backend)."""
    if catalog().get(getattr(spec, "id", None)) != spec:
        raise ModelNotAllowed(f"{getattr(spec, 'id', spec)!r} is not a catalog entry as published; only catalog models are loaded")


def check_hub_name(repo: str, filename: str) -> None:
    """A Hub repo id (owner/name) and a plain file name inside it, nothing that could leave either."""
    parts = repo.split("/") if isinstance(repo, str) else []
    if len(parts) != 2 or not all(_HUB_NAME.fullmatch(p) for p in parts) or ".." in parts:
        raise ModelNotAllowed(f"{repo!r} is not a Hub repo id (owner/name)")
    if not isinstance(filename, str) or not _HUB_FILE.fullmatch(filename) or ".." in filename.split("/"):
        raise ModelNotAllowed(f"{filename!r} is not a plain file name inside a Hub repo")


def local_checkpoint(name: str | os.PathLike, root: str | os.PathLike | None = None) -> Path:
    """A checkpoint file inside the configured folder ($SEGGALLERY_CHECKPOINT_DIR), or ModelNotAllowed.

    `name` is relative to that folder; absolute paths, '..' and symbolic links that lead outside it are refused.
    """
    root = root if root is not None else os.environ.get(CHECKPOINT_DIR_ENV)
    if not root:
        raise ModelNotAllowed(f"local checkpoints are off: set {CHECKPOINT_DIR_ENV} to the folder that holds them")
    base = Path(root).resolve()
    relative = Path(name)
    if relative.is_absolute() or ".." in relative.parts or not relative.parts:
        raise ModelNotAllowed(f"{str(name)!r}: a local checkpoint is named relative to {CHECKPOINT_DIR_ENV}, without '..'")
    path = (base / relative).resolve()
    if not path.is_relative_to(base):
        raise ModelNotAllowed(f"{str(name)!r} leads outside {CHECKPOINT_DIR_ENV} ({base})")
    if not path.is_file():
        raise ModelNotAllowed(f"no checkpoint file {str(name)!r} in {base}")
    return path
