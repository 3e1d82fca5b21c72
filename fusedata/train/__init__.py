"""Bundled trainer: ``fusedata train sft|dpo|wrpo`` on the sets a build exported.

Thin on purpose: SFT and DPO are TRL's ``SFTTrainer`` / ``DPOTrainer`` configured
with the FuseChat-3.0 hyperparameters (``presets.py``); WRPO, which TRL lacks,
is a small ``DPOTrainer`` subclass (``wrpo.py``).  ``trl`` and ``accelerate``
are the ``fusedata[train]`` extra and are imported only when training starts.
"""

from __future__ import annotations

TRAIN_EXTRA_HINT = "training needs the train extra: pip install 'fusedata[train]'"


def require_train() -> None:
    """Import-check ``trl``/``accelerate`` and fail with the extra to install."""
    try:
        import accelerate  # noqa: F401
        import trl  # noqa: F401
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError(f"{TRAIN_EXTRA_HINT} ({e})") from e
