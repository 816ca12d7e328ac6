"""User tasks for `edgebench prune --task package.module:callable` tests."""

import torch

from edgebench.prune.digits import digits_task


class FinalFinetuneHurts:
    """The digits at 16x16, except that a long fine-tune (the final one) wrecks the weights: the
    pruner must keep the weights from before it."""

    def __init__(self, wreck_from=100):
        self.inner = digits_task(size=16)
        self.wreck_from = wreck_from
        self.name = f"prune_tasks:final_finetune_hurts?wreck_from={wreck_from}"
        self.example_input = self.inner.example_input

    def evaluate(self, model):
        return self.inner.evaluate(model)

    def finetune(self, model, budget):
        if budget < self.wreck_from:
            return self.inner.finetune(model, budget)
        with torch.no_grad():
            for parameter in model.parameters():
                parameter.zero_()


def final_finetune_hurts(wreck_from=100):
    return FinalFinetuneHurts(wreck_from)
