"""The masked contrast computes what the pruned model computes, and says so only when masks are on."""

import copy

import torch
import torch_pruning as tp
import torchvision

from edgebench.prune.masking import masked_channel_count, masked_like, removed_channels


def _pruned_with_history(model, example):
    pruned = copy.deepcopy(model)
    pruner = tp.pruner.MagnitudePruner(pruned, example, importance=tp.importance.GroupMagnitudeImportance(p=1),
                                       pruning_ratio=0.25, ignored_layers=[pruned.fc])
    pruner.step()
    return pruned, pruner.DG.pruning_history()


def test_the_masked_model_computes_what_the_pruned_one_does_at_full_size():
    torch.manual_seed(0)
    model = torchvision.models.resnet18(num_classes=10).eval()
    with torch.no_grad():  # BatchNorm shifts that are not zero, so a half-masked channel would show
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.bias.uniform_(-0.5, 0.5)
    example = torch.randn(2, 3, 32, 32)
    pruned, history = _pruned_with_history(model, example[:1])
    masked = masked_like(model, example[:1], history)

    removed = removed_channels(model, example[:1], history)
    assert masked_channel_count(masked) == sum(map(len, removed.values())) > 0
    assert masked.conv1.weight.shape == model.conv1.weight.shape  # full size: only masks changed
    assert pruned.conv1.out_channels == model.conv1.out_channels - len(removed["conv1"])
    with torch.no_grad():
        torch.testing.assert_close(masked.eval()(example), pruned.eval()(example), rtol=1e-4, atol=1e-5)
    assert masked_channel_count(model) == 0  # the original is untouched


def test_removed_channels_are_original_indices_across_repeated_cuts():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU(), torch.nn.Conv2d(8, 4, 3)).eval()
    example = torch.randn(1, 3, 8, 8)
    # Channel 1 then, among the seven left, index 1 again: that is original channel 2.
    history = [["0", True, [1]], ["0", True, [1]]]
    assert removed_channels(model, example, history) == {"0": [1, 2]}
