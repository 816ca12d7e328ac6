"""What to try next: for each prunable group, the smallest aligned cut expected to meet the
iteration's target (NetAdapt's proposal step).

For ``--objective latency`` the expectation comes from the target itself: the latency saved
per channel the last time that group was cut and measured (every candidate of every iteration is
measured, so the rates follow the model as it shrinks). A group not yet measured starts from its
share of the MACs. For ``--objective flops`` the MACs a channel costs are counted. Either way the
candidate is then measured, and the measurement, not this estimate, decides.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from edgebench.prune.surgery import Graph, aligned_width, layer_macs, macs_per_channel

# At most this share of a group's channels goes in one step: a larger cut costs accuracy that a
# short fine-tune cannot win back, and NetAdapt's small steps are what keep the search greedy.
MAX_CUT_PER_STEP = 0.5
# A measured saving at or below zero still leaves a rate, so the group's next proposal is its
# largest allowed cut (a wider cut may cross a step of the latency staircase).
MIN_RATE = 1e-6


@dataclass(frozen=True)
class Proposal:
    group: str
    width: int
    keep: int

    @property
    def removed(self) -> int:
        return self.width - self.keep


def propose(graph: Graph, step: float, round_to: int, rates: dict[str, float], objective: str) -> list[Proposal]:
    """One proposal per group that can still lose channels.

    ``rates`` maps a group to the share of the current latency one channel of it saves
    (measured); ``step`` is the share of the current metric this iteration should remove."""
    macs = layer_macs(graph.model, graph.example_input)
    current_macs = sum(macs.values())
    proposals = []
    for group in graph.groups:
        width = graph.width(group)
        narrowest = aligned_width(math.ceil(width * (1 - MAX_CUT_PER_STEP)), round_to)
        widest = (width - 1) // round_to * round_to  # the widest aligned width that removes a channel
        if narrowest >= width or widest < 1:
            continue  # already at the alignment's minimum
        if objective == "latency" and group in rates:
            rate = max(rates[group], MIN_RATE)
        else:
            rate = macs_per_channel(graph, group, macs) / current_macs
        if rate <= 0:
            continue  # this group's channels cost no MACs (flops objective)
        keep = aligned_width(max(width - math.ceil(step / rate), 1), round_to)
        proposals.append(Proposal(group, width, min(max(keep, min(narrowest, widest)), widest)))
    return proposals
