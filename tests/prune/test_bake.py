"""Baking for real: a torchvision resnet18 pruned with torch.nn.utils.prune or zeroed by hand,
turned into a smaller hook-free model by Torch-Pruning, outputs compared with the masked model's."""

import copy

import pytest
import torch
import torch_pruning as tp
import torchvision
from torch.nn.utils import prune

from edgebench.errors import UsageError
from edgebench.prune.bake import bake, check_outputs
from edgebench.prune.surgery import build_graph
from edgebench.board.runners.eager import find_hooks

SHAPE = (1, 3, 32, 32)


def resnet18():
    torch.manual_seed(0)
    return torchvision.models.resnet18(num_classes=10).eval()


def example():
    return torch.randn(SHAPE, generator=torch.Generator().manual_seed(2))


def outputs_match(original, baked):
    x = torch.randn(SHAPE, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        return torch.allclose(original(x), baked(x), rtol=1e-4, atol=1e-5)


def params(model):
    return sum(p.numel() for p in model.parameters())


def group_of(result, name):
    return next(plan for plan in result.groups if plan.group == name)


@pytest.fixture(scope="module")
def structured():
    """Filters masked with ln_structured: three convs whose channels stay inside their block and
    layer1.0.conv2, whose channels are coupled with the whole of layer1's residual stream."""
    model = resnet18()
    for conv in (model.layer1[0].conv1, model.layer2[0].conv1, model.layer3[1].conv1, model.layer1[0].conv2):
        prune.ln_structured(conv, "weight", amount=0.5, n=1, dim=0)
    return model, bake(model, example())


def test_structured_masks_become_smaller_layers(structured):
    model, result = structured
    baked = result.model
    assert find_hooks(baked) == []
    assert len(find_hooks(model)) == 4  # the masked model is left as it was
    assert (baked.layer1[0].conv1.out_channels, baked.layer1[0].bn1.num_features,
            baked.layer1[0].conv2.in_channels) == (32, 32, 32)
    assert baked.layer2[0].conv1.out_channels == 64 and baked.layer3[1].conv1.out_channels == 128
    assert result.removed == 32 + 64 + 128
    assert params(baked) == result.params[1] < result.params[0] == params(model)
    assert result.macs[1] < result.macs[0]
    assert {layer["name"]: (layer["before"], layer["after"]) for layer in result.layers} == {
        "layer1.0.conv1": (64, 32), "layer2.0.conv1": (128, 64), "layer3.1.conv1": (256, 128)}
    assert result.max_abs_diff < 1e-5
    assert outputs_match(model, baked)
    assert [(mask.name, mask.structured, mask.zero_channels) for mask in result.masks][0] == (
        "layer1.0.conv1.weight", True, 32)


def test_residual_coupled_partial_zeros_are_kept_and_reported(structured):
    _, result = structured
    assert result.model.layer1[0].conv2.out_channels == 64
    residual = group_of(result, "conv1")  # the stem's channels run through layer1's residual adds
    assert set(residual.layers) == {"conv1", "layer1.0.conv2", "layer1.1.conv2"}
    assert (residual.zero, residual.dead) == (32, [])
    [kept] = residual.kept
    assert kept.channels == 32 and "zero in layer1.0.conv2 but not in all of the coupled layers" in kept.reason
    assert result.as_dict()["kept"] == [kept.as_dict()]


def test_a_residual_stream_zeroed_in_every_coupled_layer_is_removed():
    model = resnet18()
    channels = list(range(0, 64, 2))
    with torch.no_grad():
        for conv in (model.conv1, model.layer1[0].conv2, model.layer1[1].conv2):
            conv.weight[channels] = 0
    result = bake(model, example())
    assert result.hooks_removed == [] and result.masks == []  # zeroed by hand, no prune masks
    assert group_of(result, "conv1").dead == channels
    baked = result.model
    assert (baked.conv1.out_channels, baked.layer1[0].conv1.in_channels, baked.layer1[1].conv2.out_channels,
            baked.layer2[0].downsample[0].in_channels) == (32, 32, 32, 32)
    assert outputs_match(model, baked)


def test_zeroed_filters_without_masks_are_baked():
    model = resnet18()
    with torch.no_grad():
        model.layer2[1].conv1.weight[:40] = 0
    result = bake(model, example())
    assert result.model.layer2[1].conv1.out_channels == 128 - 40
    assert result.model.layer2[1].bn1.num_features == 128 - 40
    assert outputs_match(model, result.model)


def test_a_batchnorm_shift_keeps_its_zeroed_channels():
    """A zeroed conv followed by a BatchNorm with a shift outputs the shift: the channel is a
    constant the next conv sees, not zero, and removing it changes the outputs."""
    model = resnet18()
    conv, norm = model.layer3[0].conv1, model.layer3[0].bn1
    prune.ln_structured(conv, "weight", amount=0.5, n=1, dim=0)
    zeroed = (conv.weight_mask.flatten(1) == 0).all(dim=1).nonzero().flatten().tolist()
    with torch.no_grad():
        norm.bias[zeroed[:16]] = 0.5  # beta
        norm.running_mean[zeroed[16:24]] = 0.25  # beta - mean * gamma / sqrt(var + eps) != 0
    result = bake(model, example())
    assert result.model.layer3[0].conv1.out_channels == 256 - (128 - 24)
    plan = group_of(result, "layer3.0.conv1")
    [kept] = plan.kept
    assert kept.channels == 24 and "BatchNorm layer3.0.bn1" in kept.reason
    assert outputs_match(model, result.model)

    # The channels kept are not dead: cutting them as well changes what the model computes.
    cut = copy.deepcopy(result.model)
    graph = build_graph(cut, example())
    shifted = [i for i, value in enumerate(cut.layer3[0].bn1.bias.tolist()) if value == 0.5]
    graph.dependencies.get_pruning_group(cut.layer3[0].conv1, tp.prune_conv_out_channels, shifted).prune()
    assert not outputs_match(model, cut)


def test_an_unstructured_mask_removes_nothing_and_says_so():
    model = resnet18()
    prune.l1_unstructured(model.layer2[0].conv1, "weight", amount=0.6)
    result = bake(model, example())
    assert result.removed == 0 and result.layers == []
    assert find_hooks(result.model) == []
    assert result.params[0] == result.params[1]
    [mask] = result.masks
    assert not mask.structured and mask.zero_channels == 0
    assert mask.as_dict()["zero_fraction"] == pytest.approx(0.6, abs=1e-3)
    assert torch.equal(result.model.layer2[0].conv1.weight, model.layer2[0].conv1.weight)  # made permanent
    assert outputs_match(model, result.model)


def test_the_output_layer_keeps_its_zeroed_rows():
    model = resnet18()
    with torch.no_grad():
        model.fc.weight[:3] = 0
        model.fc.bias[:3] = 0
    result = bake(model, example())
    assert result.model.fc.out_features == 10
    [kept] = result.ungrouped
    assert (kept.where, kept.channels) == ("fc", 3) and "output layer" in kept.reason


def test_outputs_that_differ_are_an_error():
    model = resnet18()
    other = copy.deepcopy(model)
    with torch.no_grad():
        other.fc.bias += 1e-3
    with pytest.raises(UsageError, match="outputs differ"):
        check_outputs(model, other, example())
