"""Dataset-family loaders and prompt filters for the FuseChat-3.0 sources.

Importing this package registers one loader per dataset family in
:data:`fusedata.prompts.LOADERS` (recipe ``prompts[i].loader``):

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
"""

from . import code, instruction, math  # noqa: F401  (registers the loaders)
