"""ResNet family: torchvision-compatible structure and names, safe checkpoint loading."""

from __future__ import annotations

import pickle
import warnings

import pytest
import torch

from edgeres.errors import CheckpointError, UserInputError
from edgeres.model.arch import Arch
from edgeres.model.resnet import RandomWeightsWarning, build_model, load_model, read_state_dict

# Parameter counts of torchvision's models at 1000 classes (torchvision model docs, "Params").
TORCHVISION_PARAMS = {
    Arch.RESNET18: 11_689_512,
    Arch.RESNET34: 21_797_672,
    Arch.RESNET50: 25_557_032,
    Arch.RESNET101: 44_549_160,
    Arch.RESNET152: 60_192_808,
}


def count_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("arch", list(Arch))
def test_parameter_count_matches_torchvision(arch):
    assert count_parameters(build_model(arch)) == TORCHVISION_PARAMS[arch]


def test_resnet50_stage_shapes_at_224():
    model = build_model(Arch.RESNET50)
    x = torch.zeros(1, 3, 224, 224)
    shapes = {}
    with torch.inference_mode():
        for name, stage in model.stages():
            x = stage(torch.flatten(x, 1) if name == "fc" else x)
            shapes[name] = tuple(x.shape[1:])
    assert shapes["stem"] == (64, 56, 56)
    assert shapes["layer1"] == (256, 56, 56)
    assert shapes["layer2"] == (512, 28, 28)
    assert shapes["layer3"] == (1024, 14, 14)
    assert shapes["layer4"] == (2048, 7, 7)
    assert shapes["fc"] == (1000,)


def test_stride_sits_on_the_3x3_conv_v1_5():
    block = build_model(Arch.RESNET50).layer2[0]
    assert block.conv1.stride == (1, 1)
    assert block.conv2.stride == (2, 2)
    assert block.downsample[0].stride == (2, 2)


def test_any_class_count():
    model = build_model(Arch.RESNET50, num_classes=51)
    with torch.inference_mode():
        assert model(torch.zeros(2, 3, 224, 224)).shape == (2, 51)


def test_parameter_names_are_torchvision_names():
    names = set(build_model(Arch.RESNET50).state_dict())
    for name in ("conv1.weight", "bn1.running_var", "layer1.0.downsample.0.weight", "layer1.0.downsample.1.bias",
                 "layer3.5.conv3.weight", "layer4.2.bn3.num_batches_tracked", "fc.weight", "fc.bias"):
        assert name in names
    assert len(names) == 320  # torchvision resnet50().state_dict() has 320 entries


def test_seeded_models_are_reproducible():
    a, b = build_model(Arch.RESNET18, seed=3), build_model(Arch.RESNET18, seed=3)
    c = build_model(Arch.RESNET18, seed=4)
    assert torch.equal(a.conv1.weight, b.conv1.weight)
    assert not torch.equal(a.conv1.weight, c.conv1.weight)


def trained_like(arch: Arch, classes: int = 1000) -> torch.nn.Module:
    """A model whose BN statistics differ from the defaults, so a silent non-load would show."""
    model = build_model(arch, classes, seed=7)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 2.0)
    return model


def test_state_dict_round_trip_pth(tmp_path):
    source = trained_like(Arch.RESNET18, 10)
    path = tmp_path / "resnet18.pth"
    torch.save(source.state_dict(), path)
    loaded, used = load_model(Arch.RESNET18, path, num_classes=10, seed=99)
    assert used == str(path)
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        assert torch.equal(source.eval()(x), loaded(x))


def test_state_dict_round_trip_safetensors(tmp_path):
    from safetensors.torch import save_file

    source = trained_like(Arch.RESNET18, 10)
    path = tmp_path / "resnet18.safetensors"
    save_file({k: v.contiguous() for k, v in source.state_dict().items()}, str(path))
    loaded, _ = load_model(Arch.RESNET18, path, num_classes=10)
    assert torch.equal(loaded.layer2[1].bn2.running_var, source.layer2[1].bn2.running_var)


@pytest.mark.parametrize("prefix", ["module.", "model."])  # DataParallel, PyTorch Lightning
def test_wrapped_and_data_parallel_checkpoints_load(tmp_path, prefix: str):
    source = trained_like(Arch.RESNET18, 10)
    path = tmp_path / "wrapped.pth"
    torch.save({"state_dict": {f"{prefix}{k}": v for k, v in source.state_dict().items()}, "epoch": 3}, path)
    loaded, _ = load_model(Arch.RESNET18, path, num_classes=10)
    assert torch.equal(loaded.fc.weight, source.fc.weight)


def test_a_checkpoint_of_another_class_count_names_the_option(tmp_path):
    from typer.testing import CliRunner

    from edgeres.cli.app import app

    path = tmp_path / "product.pth"
    torch.save(trained_like(Arch.RESNET18, 51).state_dict(), path)
    args = ["export", "--arch", "resnet18", "--weights", str(path), "-o", str(tmp_path / "m.onnx")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    assert "checkpoint has 51 classes" in result.output and "(--num-classes 51)" in result.output


class Payload:
    """Pickled objects carry code; weights_only=True must refuse them."""

    def __reduce__(self):
        return (print, ("this ran at load time",))


def test_checkpoint_with_code_is_refused(tmp_path, capsys):
    path = tmp_path / "evil.pth"
    path.write_bytes(pickle.dumps({"conv1.weight": Payload()}, protocol=2))
    with pytest.raises(CheckpointError, match="weights_only"):
        read_state_dict(path)
    assert "this ran at load time" not in capsys.readouterr().out


def test_wrong_shape_names_key_and_shapes(tmp_path):
    state = build_model(Arch.RESNET18, 10).state_dict()
    state["layer1.0.conv1.weight"] = torch.zeros(64, 64, 1, 1)
    path = tmp_path / "bad.pth"
    torch.save(state, path)
    expected = r"'layer1\.0\.conv1\.weight' has shape \(64, 64, 1, 1\), expected \(64, 64, 3, 3\)"
    with pytest.raises(CheckpointError, match=expected):
        load_model(Arch.RESNET18, path, num_classes=10)


def test_missing_key_is_named(tmp_path):
    state = build_model(Arch.RESNET18, 10).state_dict()
    del state["layer3.1.bn2.running_mean"]
    path = tmp_path / "missing.pth"
    torch.save(state, path)
    expected = r"missing key 'layer3\.1\.bn2\.running_mean' \(expected shape \(256,\)\)"
    with pytest.raises(CheckpointError, match=expected):
        load_model(Arch.RESNET18, path, num_classes=10)


def test_extra_key_is_named(tmp_path):
    state = build_model(Arch.RESNET18, 10).state_dict()
    state["head.extra.weight"] = torch.zeros(3)
    path = tmp_path / "extra.pth"
    torch.save(state, path)
    with pytest.raises(CheckpointError, match=r"unexpected key 'head\.extra\.weight'"):
        load_model(Arch.RESNET18, path, num_classes=10)


def test_class_count_mismatch_suggests_flag_and_flag_resolves_it(tmp_path):
    path = tmp_path / "product.pth"
    torch.save(build_model(Arch.RESNET18, 51).state_dict(), path)
    with pytest.raises(CheckpointError, match=r"51 classes.*with 51 classes"):
        load_model(Arch.RESNET18, path)
    model, _ = load_model(Arch.RESNET18, path, num_classes=51)
    assert model.fc.out_features == 51


def test_garbage_file_is_a_checkpoint_error(tmp_path):
    path = tmp_path / "garbage.pth"
    path.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match=r"garbage\.pth"):
        read_state_dict(path)


def test_missing_file_is_user_error(tmp_path):
    with pytest.raises(UserInputError, match="not found"):
        read_state_dict(tmp_path / "nope.pth")


def test_no_weights_warns_loudly(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.warns(RandomWeightsWarning, match="meaningless"):
        _, used = load_model(Arch.RESNET18)
    assert used is None


def test_torchvision_cache_is_picked_up_without_download(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    cached = tmp_path / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    cached.parent.mkdir(parents=True)
    source = trained_like(Arch.RESNET18)
    torch.save(source.state_dict(), cached)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RandomWeightsWarning)
        model, used = load_model(Arch.RESNET18)
    assert used == str(cached)
    assert torch.equal(model.fc.bias, source.fc.bias)
