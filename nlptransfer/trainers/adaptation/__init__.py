"""Unsupervised domain adaptation: DANN, CORAL/MMD feature alignment, importance weighting (see trainer.py)."""

from nlptransfer.trainers.adaptation.config import (
    DomainAdversarialConfig,
    FeatureAlignmentConfig,
    ImportanceWeightingConfig,
    MixedDomainConfig,
    as_config,
)
from nlptransfer.trainers.adaptation.trainer import (
    DomainAdversarialTrainer,
    FeatureAlignmentTrainer,
    ImportanceWeightedTrainer,
    MixedDomainCollator,
    pair_with_target,
)

__all__ = [
    "DomainAdversarialConfig",
    "DomainAdversarialTrainer",
    "FeatureAlignmentConfig",
    "FeatureAlignmentTrainer",
    "ImportanceWeightedTrainer",
    "ImportanceWeightingConfig",
    "MixedDomainCollator",
    "MixedDomainConfig",
    "as_config",
    "pair_with_target",
]
