"""Packaging beyond pyproject.toml: the shipped recipe YAMLs (the top-level `recipes/` folder, the recipes'
defaults) install inside the package as `nlptransfer/configs/` (`nlptransfer.config.configs_dir()`);
pyproject.toml's package-data names the files."""

from setuptools import find_namespace_packages, setup

setup(
    packages=[*find_namespace_packages(include=["nlptransfer*"]), "nlptransfer.configs"],
    package_dir={"nlptransfer.configs": "recipes"},
)
