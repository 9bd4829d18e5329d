"""Guidance rules (one registry, `RULES`) and their typed configuration.

    from sgbench.guidance import GuidanceConfig, build_rule
    rule = build_rule(GuidanceConfig("sg", omega=2.5, gamma_strong=0.5, gamma_weak=0.9))
    rule.branches_at(step, n_steps)  # [(network, cond_kind, gamma)], strong first
    rule.combine(strong, weak)       # omega * strong + (1 - omega) * weak
"""

from sgbench.guidance.config import PRESETS, GuidanceConfig, build_rule, parse_interval, preset
from sgbench.guidance.rules import CONDITIONS, NETWORKS, RULES, Branch, GuidanceRule, RuleSpec, linear_guidance
from sgbench.guidance.schedules import SCHEDULE_KINDS, Schedule, parse_schedule

__all__ = [
    "Branch",
    "CONDITIONS",
    "GuidanceConfig",
    "GuidanceRule",
    "NETWORKS",
    "PRESETS",
    "RULES",
    "RuleSpec",
    "SCHEDULE_KINDS",
    "Schedule",
    "build_rule",
    "linear_guidance",
    "parse_interval",
    "parse_schedule",
    "preset",
]
