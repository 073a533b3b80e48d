"""The MLflow model registry: content fingerprints, the promotion gate, registration and promotion."""

from talking_face.registry.gate import DEFAULT_RULES, GateResult, gate
from talking_face.registry.promotion import PromotionDecision, promote_version, register_and_gate
from talking_face.registry.versions import bundle_hash

__all__ = [
    "DEFAULT_RULES",
    "GateResult",
    "PromotionDecision",
    "bundle_hash",
    "gate",
    "promote_version",
    "register_and_gate",
]
