"""Unsupervised domain adaptation: DANN, CORAL/MMD feature alignment, importance weighting (see trainer.py)."""

from nlptransfer.trainers.adaptation.config import (
    ALIGN_ON,
    ALIGNMENTS,
    DomainAdversarialConfig,
    FeatureAlignmentConfig,
    ImportanceWeightingConfig,
    MixedDomainConfig,
    as_config,
    check_weight,
)
from nlptransfer.trainers.adaptation.trainer import (
    DomainAdversarialTrainer,
    FeatureAlignmentTrainer,
    ImportanceWeightedTrainer,
    MixedDomainCollator,
    pair_with_target,
)

__all__ = [
    "ALIGNMENTS",
    "ALIGN_ON",
    "DomainAdversarialConfig",
    "DomainAdversarialTrainer",
    "FeatureAlignmentConfig",
    "FeatureAlignmentTrainer",
    "ImportanceWeightedTrainer",
    "ImportanceWeightingConfig",
    "MixedDomainCollator",
    "MixedDomainConfig",
    "as_config",
    "check_weight",
    "pair_with_target",
]
