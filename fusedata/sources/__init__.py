"""Dataset-family loaders and prompt filters for the FuseChat-3.0 sources.

Importing this package registers one loader per dataset family in
:data:`fusedata.sources.base.LOADERS` (recipe ``prompts[i].loader``), next to
``generic``, which only applies the recipe's field map:

=====================  ==================================================  ==========
loader                 datasets (Hub id)                                   category
=====================  ==================================================  ==========
``ultrafeedback``      openbmb/UltraFeedback                               instruction
``magpie``             Magpie-Align/Magpie-Pro-DPO-100K-v0.1,              instruction
                       Magpie-Align/Magpie-Qwen2-Pro-200K-Chinese          chinese
``helpsteer2``         nvidia/HelpSteer2                                   instruction
``alpaca``             llamafactory/alpaca_gpt4_zh                         chinese
``openmathinstruct2``  nvidia/OpenMathInstruct-2                           math
``leetcode``           greengerong/leetcode                                code
``self_oss_instruct``  bigcode/self-oss-instruct-sc2-exec-filter-50k       code
=====================  ==================================================  ==========

A loader maps one raw row to ``messages`` / ``gold`` / ``tests`` /
``existing_response`` (plus ``meta`` hints such as the dataset's own task or
language label, used by the filters) or raises ``DropRow(reason)``.  Filters
(:mod:`fusedata.sources.filters`) then run in recipe order.

Import order: :mod:`.base` (registry, :class:`DropRow`, message normalisation) imports
nothing from fusedata; the family modules import only :mod:`.base` and register on
import; :mod:`fusedata.recipe` imports this package to validate loader names and
:mod:`.filters` imports the recipe's filter models.  Nothing here imports
:mod:`fusedata.prompts`, and only :mod:`.filters` imports :mod:`fusedata.recipe`.
"""

from . import code, instruction, math  # noqa: F401  (registers the loaders)
from .base import LOADERS, DropRow, Loader, SourceSpec, generic_loader, norm_messages

__all__ = ["LOADERS", "DropRow", "Loader", "SourceSpec", "generic_loader", "norm_messages"]
