"""Guidance: the torch-free vocabulary (methods, configs, schedules) and the torch rules.

    from sgbench.guidance import GuidanceConfig, build_rule
    rule = build_rule(GuidanceConfig("sg", omega=2.5, gamma_strong=0.5, gamma_weak=0.9))
    rule.branches_at(step, n_steps)  # [(network, cond_kind, gamma)], strong first
    rule.combine(strong, weak)       # omega * strong + (1 - omega) * weak

`sgbench.guidance.vocabulary` and `sgbench.guidance.schedules` import no torch (the suite schema
and the CLI read them); the rules (torch) load on first use of their names.
"""

from sgbench.guidance.schedules import SCHEDULE_KINDS, Schedule, parse_schedule
from sgbench.guidance.vocabulary import (
    CONDITIONS,
    METHODS,
    NETWORKS,
    OMEGA_MAX,
    PRESETS,
    SEARCHABLE,
    GuidanceConfig,
    MethodSpec,
    method_display_name,
    method_spec,
    parse_interval,
    preset,
)

_RULES = ("Branch", "COMBINE", "GuidanceRule", "build_rule", "linear_guidance")


def __getattr__(name):
    if name in _RULES:
        from sgbench.guidance import rules

        return getattr(rules, name)
    raise AttributeError(f"module 'sgbench.guidance' has no attribute {name!r}")


__all__ = [
    "CONDITIONS", "METHODS", "NETWORKS", "OMEGA_MAX", "PRESETS", "SCHEDULE_KINDS", "SEARCHABLE",
    "GuidanceConfig", "MethodSpec", "Schedule", "method_display_name", "method_spec", "parse_interval",
    "parse_schedule", "preset", *_RULES,
]
