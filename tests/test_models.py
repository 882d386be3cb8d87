"""Networks, rollout and ModelRegistry: shapes, periodicity, option checks, registry look-ups."""
import pytest
import torch

from hybridkit._config import ConfigError
from hybridkit.models import ConvNet, ModelRegistry, ResNet, UNet, UNetConfig, rollout

NETWORKS = [UNet, ResNet, ConvNet]


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.mark.parametrize("cls", NETWORKS)
@pytest.mark.parametrize("ndim", [1, 2])
@pytest.mark.parametrize("channels", [(1, 1), (3, 2)])
def test_shapes(cls, ndim, channels):
    c_in, c_out = channels
    net = cls(in_channels=c_in, out_channels=c_out, ndim=ndim, residual=False)
    x = torch.randn(2, c_in, *([16] * ndim))
    assert net(x).shape == (2, c_out, *([16] * ndim))


@pytest.mark.parametrize("cls", NETWORKS)
@pytest.mark.parametrize("ndim", [1, 2])
def test_periodic_networks_commute_with_shifts(cls, ndim):
    """Circular padding makes the network translation-equivariant (UNet: by multiples of 2**levels)."""
    net = cls(in_channels=2, out_channels=1, ndim=ndim, residual=False).eval()
    x = torch.randn(1, 2, *([16] * ndim))
    dims = tuple(range(2, 2 + ndim))
    shift = (4,) * ndim
    with torch.no_grad():
        torch.testing.assert_close(net(torch.roll(x, shift, dims)), torch.roll(net(x), shift, dims),
                                   rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("cls", NETWORKS)
def test_zero_padding_breaks_periodicity(cls):
    net = cls(in_channels=1, out_channels=1, periodic=False, residual=False).eval()
    x = torch.randn(1, 1, 16)
    with torch.no_grad():
        assert not torch.allclose(net(torch.roll(x, 4, 2)), torch.roll(net(x), 4, 2), atol=1e-4)


@pytest.mark.parametrize("cls", NETWORKS)
def test_residual_network_starts_as_identity_on_dynamic_channels(cls):
    net = cls(in_channels=3, out_channels=2, ndim=2)
    x = torch.randn(4, 3, 8, 8)
    assert torch.equal(net(x), x[:, :2])
    # and it is trainable from there: the zero-initialised head receives a gradient
    net(x).pow(2).sum().backward()
    assert net.head.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("cls,foreign", [(UNet, "width"), (ResNet, "levels"), (ConvNet, "features")])
def test_options_a_network_does_not_use_are_rejected(cls, foreign):
    with pytest.raises(ConfigError, match=f"{foreign}.*Known keys"):
        cls(in_channels=1, out_channels=1, **{foreign: 8})


@pytest.mark.parametrize("bad", [dict(kernel_size=4), dict(activation="swish"), dict(ndim=4),
                                 dict(in_channels=1, out_channels=2), dict(levels=-1)])
def test_invalid_options_fail_with_the_reason(bad):
    cfg = dict(in_channels=1, out_channels=1) | bad
    with pytest.raises(ConfigError, match="Expected|residual"):
        UNet(cfg)


def test_config_dict_dataclass_and_kwargs_build_the_same_network():
    a = UNet(in_channels=2, out_channels=1, features=4)
    b = UNet({"in_channels": 2, "out_channels": 1, "features": 4})
    c = UNet(UNetConfig(in_channels=2, out_channels=1, features=4))
    assert a.config == b.config == c.config
    with pytest.raises(TypeError, match="not both"):
        UNet({"in_channels": 2, "out_channels": 1}, features=4)


def test_input_checks_teach_the_fix():
    net = UNet(in_channels=2, out_channels=1, levels=2)
    with pytest.raises(ValueError, match=r"expects input \(batch, 2, x\).*x\[None\]"):
        net(torch.randn(2, 16))
    with pytest.raises(ValueError, match="divisible by 4"):
        net(torch.randn(1, 2, 18))


def test_rollout_feeds_back_static_channels():
    """A model that adds the static channel to the dynamic one: after k steps u + k c."""
    def model(x):
        return x[:, :1] + x[:, 1:2]

    u, c = torch.randn(3, 1, 8), torch.randn(3, 1, 8)
    out = rollout(model, torch.cat([u, c], 1), 4)
    assert out.shape == (3, 4, 1, 8)
    for k in range(4):
        torch.testing.assert_close(out[:, k], u + (k + 1) * c)


def test_rollout_rejects_a_model_that_does_not_fit_the_data():
    with pytest.raises(ValueError, match="out_channels"):
        rollout(lambda x: torch.cat([x, x], 1), torch.randn(2, 1, 8), 2)


def test_registry_builds_synthetic_models_by_name():
    cfg = {"name": "ResNet", "in_channels": 2, "out_channels": 1, "ndim": 2, "width": 8, "depth": 2}
    net = ModelRegistry.get_synthetic_model("ResNet", config=cfg)
    assert isinstance(net, ResNet) and net.config.width == 8 and net.config.ndim == 2
    with pytest.raises(ConfigError, match=r"'Unet'.*Did you mean 'UNet'.*\['ConvNet', 'FNO', 'NeuralField', 'ResNet', 'UNet'\]"):
        ModelRegistry.get_synthetic_model("Unet", config={})
    with pytest.raises(ConfigError, match="names model 'UNet'"):
        ModelRegistry.get_synthetic_model("ResNet", config={"name": "UNet", "in_channels": 1, "out_channels": 1})


def test_registry_builds_burgers_from_a_plain_dict():
    from hybridkit.physics import Burgers

    cfg = {"resolution": [64], "domain_size": [100.0], "boundary": "periodic", "dt": 0.1, "viscosity": 0.5}
    for name in ("Burgers", "BurgersPDE"):
        pde = ModelRegistry.get_physical_model(name, config=cfg)
        assert isinstance(pde, Burgers)
        assert pde.grid.resolution == (64,) and pde.grid.domain_size == (100.0,) and pde.dt == 0.1
        assert float(pde.true_params["viscosity"]) == pytest.approx(0.5)
    seed_layout = {"name": "BurgersPDE", "resolution": [32], "domain_size": [100.0], "pde_params": {"viscosity": 0.2}}
    assert float(ModelRegistry.get_physical_model("BurgersPDE", config=seed_layout).true_params["viscosity"]) == pytest.approx(0.2)


def test_registry_rejects_bad_physical_configs():
    with pytest.raises(ConfigError, match=r"\['viscocity'\].*Known keys.*viscosity"):
        ModelRegistry.get_physical_model("Burgers", config={"resolution": [64], "domain_size": [1.0], "viscocity": 1})
    with pytest.raises(ConfigError, match="lacks.*resolution"):
        ModelRegistry.get_physical_model("Burgers", config={"dt": 0.1})
    with pytest.raises(ConfigError, match="Invalid Burgers config.*boundary"):
        ModelRegistry.get_physical_model("Burgers", config={"resolution": [64], "domain_size": [1.0], "boundary": "open"})
    with pytest.raises(ConfigError, match="Known physical models"):
        ModelRegistry.get_physical_model("Heat", config={})


def test_every_registered_physical_name_resolves_or_says_why():
    """Names whose class is not (yet) in hybridkit.physics fail with a clear message, never an
    AttributeError; those present build from a grid alone."""
    import hybridkit.physics as physics

    for name in ModelRegistry.physical_names():
        target = ModelRegistry._physical[name]
        res = [16, 16] if name == "NavierStokes2D" else [16]
        cfg = {"resolution": res, "domain_size": [10.0] * len(res)}
        if isinstance(target, str) and not hasattr(physics, target):
            with pytest.raises(ConfigError, match="does not provide"):
                ModelRegistry.get_physical_model(name, config=cfg)
        else:
            assert type(ModelRegistry.get_physical_model(name, config=cfg)).__name__ == target
