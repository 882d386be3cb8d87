"""The original design note's usage blocks (shared/seed/phase1-migration.md), run as written with
``src.`` read as ``hybridkit.``, the blocks' ``...`` filled with a generated dataset, and ONE config
dict serving both trainers (as the note passes the same ``config`` to each).

Only one line is not the note's: ``math.tensor(0.01, name="viscosity")`` is pseudo-code (phiml has
no such call); its real spelling is ``learnable("viscosity", 0.01)``.
"""
from __future__ import annotations

import pytest
import torch

from hybridkit.data import DatasetConfig, ensure_dataset


@pytest.fixture(scope="module")
def config(tmp_path_factory):
    """One experiment config in the note's layout: model sections, data fields, and trainer_params
    holding the keys of both trainers (and of the caller: epochs, batch_size, train_sim)."""
    directory = tmp_path_factory.mktemp("seed")
    dataset = DatasetConfig(name="seed_burgers", pde="Burgers",
                            pde_params={"resolution": [32], "domain_size": [100.0], "dt": 0.2, "viscosity": 0.5},
                            num_sims=4, num_frames=8, seed=0)
    path, _ = ensure_dataset(dataset, directory=directory)
    return {
        "run_params": {"model_type": "hybrid"},
        "model": {
            "synthetic": {"name": "UNet", "in_channels": 1, "out_channels": 1, "ndim": 1, "features": 4, "levels": 1},
            "physical": {"name": "BurgersPDE", "resolution": [32], "domain_size": [100.0], "dt": 0.2,
                         "viscosity": 0.5},
        },
        "data": {"path": str(path), "fields": ["velocity"]},
        "trainer_params": {
            # synthetic
            "learning_rate": 3e-3, "epochs": 3, "batch_size": 8, "train_sim": [0, 1, 2],
            # both
            "num_predict_steps": 2,
            # physical
            "method": "L-BFGS-B", "abs_tol": 1e-10, "max_iterations": 50, "suppress_convergence": False,
        },
    }


@pytest.mark.slow
def test_synthetic_trainer_block_as_written(config):
    from torch.utils.data import DataLoader

    from hybridkit.data import DataManager, HybridDataset
    from hybridkit.models import ModelRegistry
    from hybridkit.training.synthetic import SyntheticTrainer

    dynamic_fields, static_fields = ["velocity"], []  # the note leaves them to the reader
    torch.manual_seed(0)

    # 1. Create model externally
    model = ModelRegistry.get_synthetic_model("UNet", config=config["model"]["synthetic"])

    # 2. Create trainer with model
    trainer = SyntheticTrainer(config, model)

    # 3. Create data externally
    data_manager = DataManager(config["data"]["path"])
    dataset = HybridDataset(
        data_manager=data_manager,
        sim_indices=[0, 1, 2],
        field_names=config["data"]["fields"],
        num_frames=None,  # Load all frames
        num_predict_steps=config["trainer_params"]["num_predict_steps"],
        dynamic_fields=dynamic_fields,
        static_fields=static_fields,
        use_sliding_window=True,  # ALWAYS True for synthetic
    )
    data_loader = DataLoader(dataset, batch_size=32, shuffle=True)

    # 4. Train with explicit data
    trainer.train(data_source=data_loader, num_epochs=100)

    # 5. Reuse trainer with different data (e.g., augmented)
    augmented_dataset = HybridDataset(data_manager, [3], config["data"]["fields"], num_predict_steps=2)
    augmented_loader = DataLoader(augmented_dataset, batch_size=32, shuffle=True)
    trainer.train(data_source=augmented_loader, num_epochs=50)

    # persistent: the second call continued the first (one epoch counter, one optimizer)
    assert trainer.epoch == 150 and len(trainer.history) == 150
    assert trainer.history[-1].loss < 0.1 * trainer.history[0].loss
    # the note's retained attributes, read-only
    assert trainer.num_predict_steps == 2 and trainer.field_names == ("velocity",)
    assert trainer.dynamic_fields == ("velocity",) and trainer.static_fields == ()
    assert trainer.channel_map == {"velocity": slice(0, 1)} and callable(trainer.loss_fn)
    with pytest.raises(AttributeError):
        trainer.num_predict_steps = 5


def test_physical_trainer_block_as_written(config):
    from phi.math import math  # noqa: F401  (the note's import; `learnable` replaces math.tensor(..., name=))

    from hybridkit.data import DataManager, HybridDataset
    from hybridkit.models import ModelRegistry
    from hybridkit.physics import learnable
    from hybridkit.training.physical import PhysicalTrainer

    # 1. Create model and parameters externally
    model = ModelRegistry.get_physical_model("BurgersPDE", config=config["model"]["physical"])

    learnable_params = [
        learnable("viscosity", 0.01),  # Initial guess (the note: math.tensor(0.01, name="viscosity"))
    ]

    # 2. Create trainer with model and params
    trainer = PhysicalTrainer(config, model, learnable_params)

    # 3. Create data externally (using HybridDataset with return_fields=True)
    data_manager = DataManager(config["data"]["path"])
    dataset = HybridDataset(
        data_manager=data_manager,
        sim_indices=[0],
        field_names=config["data"]["fields"],
        num_frames=config["trainer_params"]["num_predict_steps"] + 1,
        num_predict_steps=config["trainer_params"]["num_predict_steps"],
        return_fields=True,  # Return PhiFlow fields, not tensors
        use_sliding_window=True,  # ALWAYS True for physical
    )

    # 4. Train with explicit data
    trainer.train(data_source=dataset, num_epochs=1)  # Physical typically single epoch

    # 5. Reuse trainer with different data (e.g., augmented)
    augmented_dataset = HybridDataset(data_manager, [1, 2], config["data"]["fields"], num_predict_steps=2,
                                      return_fields=True)
    trainer.train(data_source=augmented_dataset, num_epochs=1)

    assert trainer.epoch == 2 and trainer.history[-1].converged
    assert trainer.params["viscosity"] == pytest.approx(0.5, rel=1e-3)  # from a 50x too small guess
    # the note's retained attributes, read-only
    assert (trainer.num_predict_steps, trainer.method, trainer.max_iterations) == (2, "L-BFGS-B", 50)
    assert trainer.abs_tol == 1e-10 and trainer.suppress_convergence is False
    assert trainer.gt_fields == ("velocity",)


def test_migration_path_block_as_written(config):
    from hybridkit.data import create_data_loader
    from hybridkit.models import ModelRegistry
    from hybridkit.training.synthetic import SyntheticTrainer

    torch.manual_seed(0)
    # NEW (Phase 1):
    model = ModelRegistry.get_synthetic_model("UNet", config=config["model"]["synthetic"])
    trainer = SyntheticTrainer(config, model)
    data_loader = create_data_loader(config)  # External utility
    trainer.train(data_source=data_loader, num_epochs=config["trainer_params"]["epochs"])

    assert trainer.epoch == 3
    # the loader honours the config: train_sim, batch_size and the window length
    assert data_loader.batch_size == 8 and list(data_loader.dataset.sim_indices) == [0, 1, 2]
    initial, targets = next(iter(data_loader))
    assert initial.shape == (8, 1, 32) and targets.shape == (8, 2, 1, 32)
