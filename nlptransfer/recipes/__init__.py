"""The recipes, one module each: `python -m nlptransfer.recipes.<name>` or `nlptransfer run <name>`.

Python imports this package before it runs a recipe module, so a bare `--help` is answered here from the
cached text (`nlptransfer.help_cache`) before the recipe imports torch.
"""

from nlptransfer.help_cache import answer_module_help

answer_module_help()
