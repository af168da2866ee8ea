"""Checks every Hub-backed backend must pass, shared by the backend test modules."""

from __future__ import annotations

import numpy as np
import torch
from fakes.common import missing_from_hub_cache

from seggallery import backends
from seggallery.runtime.engine import Engine
from seggallery.runtime.results import Failure, Prediction, fetch_command

CPU = torch.device("cpu")


def assert_is_cached_follows_the_files(spec, write, photo: np.ndarray) -> None:
    """In an empty Hub cache: not cached; after `write(spec)`: cached; without any one pinned file:
    not cached, and running the model gives a Failure naming that file."""
    assert not backends.is_cached(spec)
    write(spec)
    assert backends.is_cached(spec)
    for (file,) in (weight_file.origins for weight_file in backends.files(spec)):
        with missing_from_hub_cache(file.repo, file.revision, file.filename, file.repo_type):
            assert not backends.is_cached(spec), f"{spec.id} counts as cached without {file}"
            result = Engine(device=CPU).run(photo, spec.id)
            assert isinstance(result, Failure), f"{spec.id} ran without {file}"
            assert file.filename in result.reason
    assert backends.is_cached(spec)


def assert_absent_weights_give_the_fetch_command(spec, photo: np.ndarray) -> None:
    """In an empty Hub cache, running the model is a Failure value that says what to run, not an exception."""
    result = Engine(device=CPU).run(photo, spec.id)
    assert isinstance(result, Failure), result
    assert "not in the local cache" in result.reason
    assert result.fix.startswith(fetch_command(spec))
    assert fetch_command(spec) == f"python -m seggallery fetch {spec.id}"


def assert_masks_equal(result, expected: np.ndarray, photo: np.ndarray) -> None:
    assert isinstance(result, Prediction), getattr(result, "reason", result)
    assert len(np.unique(expected)) > 1, "a one-class reference mask would make the comparison say little"
    assert result.mask.shape == photo.shape[:2]
    np.testing.assert_array_equal(result.mask, expected)
