"""Understanding users: interest taxonomy, profiles, sentiment, audiences, interest classifier."""

from interestlens.interests.audience import audience, resolve_interests
from interestlens.interests.classifier import InterestClassifier
from interestlens.interests.profile import (
    InterestProfile,
    InterestProfiler,
    InterestWeight,
    ProfileConfig,
    UserText,
)
from interestlens.interests.sentiment import SentimentAnalyzer
from interestlens.interests.taxonomy import Interest, InterestTaxonomy

__all__ = [
    "Interest",
    "InterestClassifier",
    "InterestProfile",
    "InterestProfiler",
    "InterestTaxonomy",
    "InterestWeight",
    "ProfileConfig",
    "SentimentAnalyzer",
    "UserText",
    "audience",
    "resolve_interests",
]
