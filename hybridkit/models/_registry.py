"""``ModelRegistry``: the original design note's name -> class map for config-driven runs."""
from __future__ import annotations

import difflib
import importlib
import inspect
from typing import Any, Mapping

from torch import nn

from .._config import ConfigError, check_keywords
from .._grid import GridSpec
from ._convnet import ConvNet
from ._fno import FNO
from ._neural_field import NeuralField
from ._resnet import ResNet
from ._unet import UNet

# Physical models are named by their class in hybridkit.physics and resolved at call time: the
# registry does not import PhiFlow until a physical model is asked for, and a model added to
# hybridkit.physics later needs no change here.
_PHYSICS_MODULE = "hybridkit.physics"
_GRID_KEYS = ("resolution", "domain_size", "boundary")


class ModelRegistry:
    """Build a model from its name and a plain config dict (the original design note's API).

    Python users import the classes directly (``hybridkit.models.UNet``,
    ``hybridkit.physics.Burgers``); the registry serves configs that name them.

    Example::

        model = ModelRegistry.get_synthetic_model("UNet", config={"in_channels": 1, "out_channels": 1})
        pde = ModelRegistry.get_physical_model(
            "BurgersPDE", config={"resolution": [64], "domain_size": [100.0], "dt": 0.1, "viscosity": 0.5})
    """

    _synthetic: dict[str, type[nn.Module]] = {"UNet": UNet, "ResNet": ResNet, "ConvNet": ConvNet,
                                                  "FNO": FNO, "NeuralField": NeuralField}
    _physical: dict[str, str | type] = {
        "Burgers": "Burgers", "BurgersPDE": "Burgers",
        "Diffusion": "Diffusion", "DiffusionPDE": "Diffusion",
        "AdvectionDiffusion": "AdvectionDiffusion", "AdvectionDiffusionPDE": "AdvectionDiffusion",
        "NavierStokes2D": "NavierStokes2D",
    }

    @classmethod
    def synthetic_names(cls) -> list[str]:
        """Names :meth:`get_synthetic_model` accepts."""
        return sorted(cls._synthetic)

    @classmethod
    def physical_names(cls) -> list[str]:
        """Names :meth:`get_physical_model` accepts (their classes are looked up when asked for)."""
        return sorted(cls._physical)

    @classmethod
    def register_synthetic_model(cls, name: str, model_cls: type[nn.Module]) -> None:
        """Make ``model_cls`` buildable by name; it must accept a config dict as its only argument."""
        cls._synthetic[name] = model_cls

    @classmethod
    def register_physical_model(cls, name: str, model_cls: type) -> None:
        """Make ``model_cls`` (signature ``(grid, *, **kwargs)``) buildable by name."""
        cls._physical[name] = model_cls

    @classmethod
    def get_synthetic_model(cls, name: str, config: Mapping[str, Any] | None = None) -> nn.Module:
        """A network from its name and options, e.g. ``("UNet", {"in_channels": 2, "out_channels": 1})``.

        A ``"name"`` key in ``config`` (the original design note's ``model.synthetic`` section has one) must agree
        with ``name``. The other keys are the network's options (see ``UNetConfig`` etc.).

        Raises:
            ConfigError: unknown name (the message lists the known ones), unknown or invalid options.
        """
        model_cls = _lookup(cls._synthetic, name, "synthetic")
        return model_cls(_without_name(config, name))

    @classmethod
    def get_physical_model(cls, name: str, config: Mapping[str, Any] | None = None):
        """A physical model from its name and a plain dict.

        ``resolution``, ``domain_size`` and ``boundary`` build the :class:`~hybridkit.GridSpec`;
        the other keys are the model's keyword arguments (``dt``, ``viscosity``, ...). A
        ``"pde_params"`` sub-dict (the original design note's layout) is merged into them; a ``"name"`` key must
        agree with ``name``.

        Raises:
            ConfigError: unknown name, missing grid keys, unknown keyword arguments (the message
                lists the known ones), invalid values.
        """
        model_cls = _lookup(cls._physical, name, "physical")
        if isinstance(model_cls, str):
            model_cls = _resolve_physics_class(name, model_cls)
        cfg = _without_name(config, name)
        kwargs = {k: v for k, v in cfg.items() if k not in _GRID_KEYS and k != "pde_params"}
        pde_params = dict(cfg.get("pde_params") or {})
        clash = sorted(set(pde_params) & set(kwargs))
        if clash:
            raise ConfigError(f"{clash} given both in pde_params and at the top level of the {name} config.")
        kwargs.update(pde_params)
        known = _keyword_names(model_cls)
        unknown = sorted(set(kwargs) - set(known))
        if unknown:
            raise ConfigError(
                f"Unknown key(s) {unknown} for {name} ({model_cls.__name__}). Known keys: "
                f"{list(_GRID_KEYS) + ['pde_params'] + known}."
            )
        kwargs = check_keywords(model_cls.__init__, kwargs, where=f"{name} config (pde_params)")
        missing = [k for k in ("resolution", "domain_size") if k not in cfg]
        if missing:
            raise ConfigError(
                f"The {name} config lacks {missing}. Fix: add e.g. resolution: [64], domain_size: [100.0] "
                "(and boundary: periodic or zero)."
            )
        try:
            grid = GridSpec(**{k: cfg[k] for k in _GRID_KEYS if k in cfg})
            return model_cls(grid, **kwargs)
        except (TypeError, ValueError) as e:
            raise ConfigError(f"Invalid {name} config: {e}") from e


def _lookup(table: Mapping[str, Any], name: str, kind: str):
    if name not in table:
        close = difflib.get_close_matches(str(name), list(table), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ConfigError(f"Unknown {kind} model {name!r}.{hint} Known {kind} models: {sorted(table)}.")
    return table[name]


def _without_name(config: Mapping[str, Any] | None, name: str) -> dict:
    if config is None:
        return {}
    if not isinstance(config, Mapping):
        raise ConfigError(f"Expected a dict as the config of {name}, got {type(config).__name__}.")
    cfg = dict(config)
    given = cfg.pop("name", name)
    if given != name:
        raise ConfigError(f"The config names model {given!r} but {name!r} was asked for.")
    return cfg


def _resolve_physics_class(name: str, class_name: str) -> type:
    module = importlib.import_module(_PHYSICS_MODULE)
    model_cls = getattr(module, class_name, None)
    if model_cls is None:
        raise ConfigError(
            f"{name!r} is registered as {_PHYSICS_MODULE}.{class_name}, which this installation does "
            f"not provide. Available there: {sorted(getattr(module, '__all__', []))}."
        )
    return model_cls


def _keyword_names(model_cls: type) -> list[str]:
    """Keyword arguments the constructor takes after the grid."""
    params = list(inspect.signature(model_cls.__init__).parameters.values())[2:]  # self, grid
    return [p.name for p in params if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)]
