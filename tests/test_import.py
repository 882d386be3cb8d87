"""Bring your own data: numpy / PDEBench / xarray importers, to_xarray, and their errors."""
from __future__ import annotations

import h5py
import numpy as np
import pytest
import torch

from hybridkit.data import (DataManager, DatasetFormatError, HybridDataset, import_arrays,
                            import_pdebench, import_xarray, to_xarray)

xr = pytest.importorskip("xarray")  # the `io` extra; in `dev`, so the suite runs these
torch.set_num_threads(1)


@pytest.fixture
def rng():
    return np.random.default_rng(7)


def noise(rng, shape):
    """float64 data (the import rounds to float32) whose two ends differ along every axis."""
    return rng.standard_normal(shape)


def stored(path, field):
    with DataManager(path) as dm:
        return np.stack([dm.load(s, field) for s in range(dm.num_sims)])


def assert_windows_equal(path, field, expected):
    """HybridDataset cuts the imported frames exactly (float32): (initial, targets) of each window."""
    with DataManager(path) as dm:
        ds = HybridDataset(dm, sim_indices=range(dm.num_sims), field_names=[field], num_predict_steps=2)
        frames = dm.num_frames
        for i in (0, len(ds) - 1):
            sim, start = divmod(i, frames - 2)
            x, y = ds[i]
            want = torch.from_numpy(np.ascontiguousarray(expected[sim, start:start + 3]))
            # channels: one per component of a vector field, one for a scalar field
            want = torch.movedim(want, -1, 1) if field in dm.vector_fields else want.unsqueeze(1)
            assert torch.equal(x, want[0]) and torch.equal(y, want[1:])


# ---------------------------------------------------------------- numpy
def test_arrays_round_trip_exactly_with_node_coordinates_in_2d(tmp_path, rng):
    """Periodic node coordinates x_i = a + i dx: L = n dx, the arrays back bit for bit (float32),
    the coordinates back from to_xarray."""
    nx, ny = 16, 8
    x, y = -1.0 + np.arange(nx) * 0.125, 3.0 + np.arange(ny) * 0.5
    u = noise(rng, (3, 6, nx, ny))
    vel = noise(rng, (3, 6, nx, ny, 2))
    nu = np.array([0.1, 0.2, 0.3])
    p = import_arrays(tmp_path / "mine.h5", {"u": u, "velocity": vel}, vector_fields=["velocity"],
                      periodic=True, t=0.5 + 0.25 * np.arange(6), coords=[x, y], pde="my solver",
                      params={"nu": nu, "c": 2.0}, attrs={"who": "test"})
    with DataManager(p) as dm:
        assert dm.grid.resolution == (nx, ny) and dm.grid.domain_size == (2.0, 4.0)
        assert dm.grid.boundary == "periodic" and dm.dt == 0.25 and dm.metadata["pde"] == "my solver"
        assert dm.vector_fields == ("velocity",) and dm.param_kinds == {"nu": "scalar", "c": "scalar"}
        np.testing.assert_array_equal(dm.params("nu"), nu.astype(np.float32))
        np.testing.assert_array_equal(dm.params("c"), np.full(3, 2.0, np.float32))
        assert dm.metadata["source_config"]["who"] == "test"
    np.testing.assert_array_equal(stored(p, "u"), u.astype(np.float32))
    np.testing.assert_array_equal(stored(p, "velocity"), vel.astype(np.float32))
    assert_windows_equal(p, "u", u.astype(np.float32))
    assert_windows_equal(p, "velocity", vel.astype(np.float32))

    back = to_xarray(p)
    np.testing.assert_allclose(back["x"].values, x, atol=1e-12)
    np.testing.assert_allclose(back["y"].values, y, atol=1e-12)
    np.testing.assert_allclose(back["time"].values, 0.5 + 0.25 * np.arange(6), atol=1e-12)
    assert back["velocity"].dims == ("sim", "time", "x", "y", "vector")
    np.testing.assert_array_equal(back["velocity"].values, vel.astype(np.float32))


def test_arrays_with_domain_size_are_cell_centred_on_0_L(tmp_path, rng):
    u = noise(rng, (2, 3, 32))
    p = import_arrays(tmp_path / "a.h5", u, periodic=False, dt=0.1, domain_size=10.0)
    with DataManager(p) as dm:
        assert dm.field_names == ("u",) and dm.grid.boundary == "zero" and dm.grid.domain_size == (10.0,)
        assert dm.param_names == () and dm.metadata["pde"] == "unknown"
    np.testing.assert_allclose(to_xarray(p)["x"].values, (np.arange(32) + 0.5) * 10 / 32)


def test_spacing_tolerance_is_a_fraction_of_a_cell_plus_float32_rounding(tmp_path, rng):
    """float32 cell centres of 1024 cells on [0, 1) pass; a jitter of 1e-2 cells fails, 1e-4 passes."""
    n = 1024
    u = noise(rng, (1, 2, n))
    x32 = ((np.arange(n) + 0.5) / n).astype(np.float32)
    p = import_arrays(tmp_path / "f32.h5", u, periodic=True, dt=1.0, coords=x32)
    with DataManager(p) as dm:
        assert abs(dm.grid.domain_size[0] - 1.0) < 1e-6
    p = import_arrays(tmp_path / "exact.h5", u, periodic=True, dt=1.0, coords=x32, domain_size=1.0)
    with DataManager(p) as dm:
        assert dm.grid.domain_size == (1.0,)
    x = (np.arange(n) + 0.5) / n
    jitter = np.zeros(n)
    jitter[500] = 1.0 / n
    import_arrays(tmp_path / "ok.h5", u, periodic=True, dt=1.0, coords=x + 1e-4 * jitter)
    with pytest.raises(ValueError, match=r"uniformly spaced coordinates along 'x'.*value 500.*0\.01 steps off"
                                         r".*Fix: interpolate"):
        import_arrays(tmp_path / "bad.h5", u, periodic=True, dt=1.0, coords=x + 1e-2 * jitter)
    assert not (tmp_path / "bad.h5").exists()


# ---------------------------------------------------------------- PDEBench
def write_pdebench_1d(path, rng, n=6, frames=9, nx=32, t_extra=True):
    """PDEBench's 1D layout (Data_Merge.py `transform`): cell centres on [0, 1), T + 1 times."""
    dx = 1.0 / nx
    tensor = rng.standard_normal((n, frames, nx)).astype(np.float32)
    with h5py.File(path, "w") as f:
        f.create_dataset("tensor", data=tensor)
        f.create_dataset("x-coordinate", data=(np.arange(nx) * dx + 0.5 * dx).astype(np.float32))
        f.create_dataset("t-coordinate", data=(np.arange(frames + t_extra) * 0.01).astype(np.float32))
        f.attrs["Nu"] = 0.01
    return tensor


def test_pdebench_1d_burgers_layout_round_trips(tmp_path, rng):
    src = tmp_path / "1D_Burgers_Sols_Nu0.01.hdf5"
    tensor = write_pdebench_1d(src, rng)
    p = import_pdebench(src, tmp_path / "b.h5", periodic=True, fields={"velocity": "tensor"},
                        pde="Burgers", params={"viscosity": 0.01 / np.pi})
    with DataManager(p) as dm:
        assert dm.num_sims == 6 and dm.num_frames == 9 and dm.grid.resolution == (32,)
        assert abs(dm.grid.domain_size[0] - 1.0) < 1e-6 and abs(dm.dt - 0.01) < 1e-8
        info = dm.metadata["source_config"]["import"]
        assert info["from"] == "pdebench" and abs(info["source_attrs"]["Nu"] - 0.01) < 1e-12
        assert abs(info["origin"][0]) < 1e-7  # cell centres at (i + 0.5) dx: the domain starts at 0
        np.testing.assert_allclose(dm.params("viscosity"), 0.01 / np.pi, rtol=1e-6)
    np.testing.assert_array_equal(stored(p, "velocity"), tensor)
    assert_windows_equal(p, "velocity", tensor)

    # a selection of simulations and every 2nd frame; a t-coordinate of T values
    src2 = tmp_path / "t_only.hdf5"
    tensor = write_pdebench_1d(src2, rng, t_extra=False)
    p = import_pdebench(src2, tmp_path / "sel.h5", periodic=True, sims=slice(1, 6, 2), frame_stride=2)
    with DataManager(p) as dm:
        assert dm.field_names == ("u",) and dm.num_sims == 3 and dm.num_frames == 5
        assert abs(dm.dt - 0.02) < 1e-8
    np.testing.assert_array_equal(stored(p, "u"), tensor[1:6:2, ::2])


def test_pdebench_2d_arrays_stack_components_into_a_vector_field(tmp_path, rng):
    """The CFD layout: density, Vx, Vy (N, T, X, Y) with x-/y-/t-coordinate."""
    src = tmp_path / "2D_CFD.hdf5"
    shape = (3, 4, 8, 16)
    data = {k: rng.standard_normal(shape).astype(np.float32) for k in ("density", "Vx", "Vy")}
    with h5py.File(src, "w") as f:
        for k, v in data.items():
            f.create_dataset(k, data=v)
        f.create_dataset("x-coordinate", data=(np.arange(8) + 0.5) / 8)
        f.create_dataset("y-coordinate", data=(np.arange(16) + 0.5) / 16 * 2)
        f.create_dataset("t-coordinate", data=np.arange(5) * 0.05)
        f.attrs.update(eta=0.1, zeta=0.1, M=1.0)
    p = import_pdebench(src, tmp_path / "cfd.h5", periodic=True,
                        fields={"velocity": ("Vx", "Vy"), "density": "density"})
    with DataManager(p) as dm:
        assert dm.grid.resolution == (8, 16) and np.allclose(dm.grid.domain_size, (1.0, 2.0))
        assert dm.vector_fields == ("velocity",)
        assert dm.metadata["source_config"]["import"]["source_attrs"]["M"] == 1.0
    np.testing.assert_array_equal(stored(p, "velocity"), np.stack([data["Vx"], data["Vy"]], -1))
    np.testing.assert_array_equal(stored(p, "density"), data["density"])


def test_pdebench_without_coordinates_and_a_stored_vector_axis(tmp_path, rng):
    """The incompressible Navier-Stokes layout: velocity (N, T, X, Y, 2), no x-coordinate, times
    per simulation: domain_size (one length per axis: it also says how many axes) and dt given, the
    vector field named in vector_fields."""
    src = tmp_path / "ns_incom.h5"
    vel = rng.standard_normal((2, 3, 8, 8, 2)).astype(np.float32)
    with h5py.File(src, "w") as f:
        f.create_dataset("velocity", data=vel)
        f.create_dataset("t", data=np.tile(np.arange(3) * 0.005, (2, 1)))
    with pytest.raises(ValueError, match=r"rank 4 \(sims, time, x, y\).*name it in vector_fields"):
        import_pdebench(src, tmp_path / "o.h5", periodic=False, fields={"velocity": "velocity"},
                        domain_size=(1.0, 1.0), dt=0.005)
    p = import_pdebench(src, tmp_path / "ns.h5", periodic=False, fields={"velocity": "velocity"},
                        vector_fields=["velocity"], domain_size=(1.0, 1.0), dt=0.005)
    with DataManager(p) as dm:
        assert dm.vector_fields == ("velocity",) and dm.grid.domain_size == (1.0, 1.0) and dm.dt == 0.005
    np.testing.assert_array_equal(stored(p, "velocity"), vel)


def test_pdebench_groups_layout(tmp_path, rng):
    """gen_diff_react.py's layout: one group per seed with data (T, X, Y, C) and grid/x, y, t."""
    src = tmp_path / "2D_diff-react.h5"
    nx, frames = 8, 5
    xc = np.linspace(-1 + 1 / nx, 1 - 1 / nx, nx)  # sim_diff_react.py: cell centres on [-1, 1]
    samples = [rng.standard_normal((frames, nx, nx, 2)).astype(np.float32) for _ in range(3)]
    with h5py.File(src, "w") as f:
        for i, s in enumerate(samples):
            f.create_dataset(f"{i:04d}/data", data=s)
            f.create_dataset(f"{i:04d}/grid/x", data=xc.astype(np.float32))
            f.create_dataset(f"{i:04d}/grid/y", data=xc.astype(np.float32))
            f.create_dataset(f"{i:04d}/grid/t", data=np.linspace(0, 5, frames).astype(np.float32))
            f[f"{i:04d}"].attrs["config"] = "sim: {Du: 0.001}"
    p = import_pdebench(src, tmp_path / "dr.h5", periodic=False)
    with DataManager(p) as dm:
        assert dm.field_names == ("u0", "u1") and dm.grid.boundary == "zero"
        assert np.allclose(dm.grid.domain_size, (2.0, 2.0)) and abs(dm.dt - 1.25) < 1e-6
        info = dm.metadata["source_config"]["import"]
        assert np.allclose(info["origin"], -1.0, atol=1e-6) and "Du" in info["source_attrs"]["first_group"]["config"]
    np.testing.assert_array_equal(stored(p, "u1"), np.stack(samples)[..., 1])
    p = import_pdebench(src, tmp_path / "vec.h5", periodic=False, fields={"uv": (0, 1)}, sims=2)
    np.testing.assert_array_equal(stored(p, "uv"), np.stack(samples[:2]))


def test_pdebench_errors_name_the_fix(tmp_path, rng):
    src = tmp_path / "p.hdf5"
    write_pdebench_1d(src, rng)
    with pytest.raises(KeyError, match=r"no dataset 'nope'.*holds \['t-coordinate', 'tensor', 'x-coordinate'\]"):
        import_pdebench(src, tmp_path / "o.h5", periodic=True, fields={"u": "nope"})
    with pytest.raises(ValueError, match=r"sims as an integer >= 1 and <= 6"):
        import_pdebench(src, tmp_path / "o.h5", periodic=True, sims=7)
    with pytest.raises(TypeError, match="does not guess"):
        import_pdebench(src, tmp_path / "o.h5", periodic="yes")
    with h5py.File(src, "a") as f:
        del f["t-coordinate"]
        f.create_dataset("t-coordinate", data=np.arange(4) * 0.1)
    with pytest.raises(ValueError, match=r"9 \(or 10\) values for the 9 frames.*Fix: pass dt="):
        import_pdebench(src, tmp_path / "o.h5", periodic=True)
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f.create_dataset("a", data=np.zeros(3))
    with pytest.raises(DatasetFormatError, match=r"Expected a PDEBench layout.*found \['a'\]"):
        import_pdebench(other, tmp_path / "o.h5", periodic=True)
    assert not (tmp_path / "o.h5").exists()


# ---------------------------------------------------------------- xarray
def xarray_dataset(rng, sims=3, frames=5, nx=16, ny=8):
    x = np.arange(nx) * 0.25  # node coordinates of a periodic grid
    y = (np.arange(ny) + 0.5) * 0.5
    u = rng.standard_normal((sims, frames, nx, ny)).astype(np.float32)
    w = rng.standard_normal((sims, frames, nx, ny)).astype(np.float32)
    ds = xr.Dataset(
        {"u": (("sim", "time", "x", "y"), u),
         "w": (("time", "sim", "y", "x"), w.transpose(1, 0, 3, 2)),  # any dim order
         "nu": (("sim",), np.array([0.1, 0.2, 0.3]))},
        coords={"sim": np.arange(sims), "time": 1.0 + 0.1 * np.arange(frames), "x": x, "y": y},
        attrs={"solver": "spectral"})
    return ds, u, w


def test_xarray_round_trip(tmp_path, rng):
    ds, u, w = xarray_dataset(rng)
    p = import_xarray(ds, tmp_path / "x.h5", periodic=True, pde="Burgers")
    with DataManager(p) as dm:
        assert dm.field_names == ("u", "w") and dm.param_kinds == {"nu": "scalar"}
        assert dm.grid.resolution == (16, 8) and np.allclose(dm.grid.domain_size, (4.0, 4.0))
        assert abs(dm.dt - 0.1) < 1e-12
    np.testing.assert_array_equal(stored(p, "u"), u)
    np.testing.assert_array_equal(stored(p, "w"), w)
    assert_windows_equal(p, "w", w)
    back = to_xarray(p)
    xr.testing.assert_allclose(back[["u", "w"]], ds[["u", "w"]].transpose("sim", "time", "x", "y"), atol=1e-12)
    np.testing.assert_allclose(back["nu"].values, ds["nu"].values, rtol=1e-7)
    assert back.attrs["pde"] == "Burgers"

    # and back in again: to_xarray's output is an importable dataset with the same content
    p2 = import_xarray(back, tmp_path / "again.h5", periodic=True)
    np.testing.assert_array_equal(stored(p2, "w"), w)


def test_xarray_from_a_netcdf_file(tmp_path, rng):
    pytest.importorskip("h5netcdf")
    ds, u, _ = xarray_dataset(rng)
    nc = tmp_path / "obs.nc"
    ds.to_netcdf(nc, engine="h5netcdf")
    p = import_xarray(nc, tmp_path / "nc.h5", periodic=True, fields=["u"], params=[])
    with DataManager(p) as dm:
        assert dm.field_names == ("u",) and dm.param_names == ()
    np.testing.assert_array_equal(stored(p, "u"), u)
    # and out again: to_xarray's result is netCDF-serialisable (attrs are strings and numbers)
    to_xarray(p).to_netcdf(tmp_path / "out.nc", engine="h5netcdf")
    with xr.open_dataset(tmp_path / "out.nc", engine="h5netcdf") as back:
        np.testing.assert_array_equal(back["u"].values, u)
        assert back.attrs["boundary"] == "periodic"


def test_xarray_errors_name_the_fix(tmp_path, rng):
    ds, _, _ = xarray_dataset(rng)
    with pytest.raises(KeyError, match=r"missing \['v'\].*Fix: name them in fields"):
        import_xarray(ds, tmp_path / "o.h5", periodic=True, fields=["v"])
    with pytest.raises(ValueError, match=r"Expected a 'sim' dim.*ds.expand_dims\('sim'\)"):
        import_xarray(ds.isel(sim=0), tmp_path / "o.h5", periodic=True)
    bent = ds.assign_coords(x=ds["x"].values ** 1.1)
    with pytest.raises(ValueError, match=r"uniformly spaced coordinates along 'x'"):
        import_xarray(bent, tmp_path / "o.h5", periodic=True)
    with pytest.raises(ValueError, match=r"uniformly spaced frame times"):
        import_xarray(ds.assign_coords(time=[0.0, 0.1, 0.2, 0.4, 0.5]), tmp_path / "o.h5", periodic=True)
    dated = ds.assign_coords(time=np.arange(5).astype("datetime64[s]"))
    with pytest.raises(ValueError, match=r"numeric frame times.*timedelta64"):
        import_xarray(dated, tmp_path / "o.h5", periodic=True)
    with pytest.raises(ValueError, match=r"Expected field 'z' with dims \('sim', 'time', 'x', 'y'\)"):
        import_xarray(ds.assign(z=ds["u"].isel(y=0)), tmp_path / "o.h5", periodic=True)
    assert not (tmp_path / "o.h5").exists()


# ---------------------------------------------------------------- errors shared by all importers
def test_bad_arrays_are_refused_with_the_fix(tmp_path, rng):
    x = (np.arange(16) + 0.5) / 16
    u = noise(rng, (2, 4, 16))
    target = tmp_path / "o.h5"
    with pytest.raises(ValueError, match=r"rank 3 \(sims, time, x\), got shape \(4, 16\).*u\[None\]"):
        import_arrays(target, u[0], periodic=True, dt=0.1, coords=x)
    with pytest.raises(ValueError, match=r"same \(sims, time, \*space\).*\(2, 3, 16\).*\(2, 4, 16\).*crop"):
        import_arrays(target, {"u": u, "v": u[:, :3]}, periodic=True, dt=0.1, coords=x)
    with pytest.raises(ValueError, match=r"Expected 16 coordinates along 'x'.*got shape \(15,\)"):
        import_arrays(target, u, periodic=True, dt=0.1, coords=x[:15])
    with pytest.raises(ValueError, match=r"increasing coordinates.*x\[::-1\]"):
        import_arrays(target, u, periodic=True, dt=0.1, coords=x[::-1])
    with pytest.raises(ValueError, match=r"vector field 'u' with 1 components"):
        import_arrays(target, {"u": np.stack([u, u], -1)}, vector_fields="u", periodic=True, dt=0.1, coords=x)
    with pytest.raises(KeyError, match="not among the fields"):
        import_arrays(target, u, vector_fields=["v"], periodic=True, dt=0.1, coords=x)
    bad = u.copy()
    bad[1, 2, 5] = np.nan
    with pytest.raises(ValueError, match=r"NaN or inf in field 'u': simulation\(s\) \[1\], first at frame 2.*Fix"):
        import_arrays(target, bad, periodic=True, dt=0.1, coords=x)
    with pytest.raises(ValueError, match=r"domain_size 2 along 'x' disagrees.*16 cells of 0.0625 span 1"):
        import_arrays(target, u, periodic=True, dt=0.1, coords=x, domain_size=2.0)
    with pytest.raises(ValueError, match=r"dt= or the frame times"):
        import_arrays(target, u, periodic=True, coords=x)
    with pytest.raises(ValueError, match=r"one time per frame.*\(4\), got shape \(3,\)"):
        import_arrays(target, u, periodic=True, t=[0, 1, 2], coords=x)
    with pytest.raises(ValueError, match=r"parameter 'nu'.*\(sims=2, \*shape\).*got shape \(3,\)"):
        import_arrays(target, u, periodic=True, dt=0.1, coords=x, params={"nu": [1, 2, 3]})
    with pytest.raises(ValueError, match=r"at least 4 cells"):
        import_arrays(target, u[..., :3], periodic=True, dt=0.1, domain_size=1.0)
    # a periodic grid with both ends of the period: the last sample repeats the first
    xs = np.linspace(0, 1, 17)
    closed = np.sin(2 * np.pi * xs)[None, None] * np.ones((2, 4, 1))
    closed[..., -1] = closed[..., 0]
    with pytest.raises(ValueError, match=r"last sample equals the first.*data\[\.\.\., :-1\] and x\[:-1\]"):
        import_arrays(target, closed, periodic=True, dt=0.1, coords=xs)
    import_arrays(target, closed[..., :-1], periodic=True, dt=0.1, coords=xs[:-1])  # the fix works
    import_arrays(tmp_path / "walls.h5", closed, periodic=False, dt=0.1, coords=xs)  # non-periodic: fine
