"""Reference solutions written independently of hybridkit (numpy only), for data "from elsewhere".

* :func:`burgers_spectral` — 1D viscous Burgers ``u_t + u u_x = nu u_xx`` on a periodic domain by
  a Fourier pseudo-spectral method with 2/3 dealiasing and ETDRK4 in time (Cox & Matthews 2002;
  coefficients by the contour integral of Kassam & Trefethen 2005), on a finer grid than the data.
* :func:`heat_spectral` — the heat equation ``T_t = D lap T`` with a scalar ``D`` on a periodic
  box in any dimension, exact in Fourier space: ``T_k(t) = T_k(0) exp(-D |k|^2 t)``.

Both take values at the cell centres ``x_i = (i + 1/2) L / N`` of a periodic grid (hybridkit's
layout, but nothing here imports hybridkit) and return values at the same points. The initial
values are read as their trigonometric interpolant without the Nyquist mode (exact for smooth
states made of a few low modes).
"""
from __future__ import annotations

import numpy as np

__all__ = ["burgers_spectral", "heat_spectral"]


def heat_spectral(t0: np.ndarray, domain_size, diffusivity: float, times, *,
                  laplacian: str = "exact") -> np.ndarray:
    """Exact periodic heat equation solution at ``times``.

    Args:
        t0: initial values ``(..., *space)`` at the cell centres; the last ``len(domain_size)``
            axes are space.
        domain_size: length per spatial axis (a float in 1D).
        diffusivity: ``D >= 0``.
        times: frame times (``t >= 0``).
        laplacian: ``"exact"`` (symbol ``-|k|^2``: the PDE) or ``"central"`` (the three-point
            stencil's symbol ``-sum_a 4 sin^2(k_a dx_a / 2) / dx_a^2``: the exact solution in time
            of the semi-discrete central-difference scheme).

    Returns:
        ``(len(times), ..., *space)``.
    """
    sizes = np.atleast_1d(np.asarray(domain_size, dtype=np.float64))
    axes = tuple(range(t0.ndim - len(sizes), t0.ndim))
    shape = [t0.shape[a] for a in axes]
    hat = np.fft.rfftn(np.asarray(t0, dtype=np.float64), axes=axes)
    k2 = 0.0
    for i, (n, size) in enumerate(zip(shape, sizes)):
        freq = np.fft.rfftfreq(n) if i == len(shape) - 1 else np.fft.fftfreq(n)
        k = 2 * np.pi * n * freq / size
        if laplacian == "central":
            dx = size / n
            k = 2 * np.sin(k * dx / 2) / dx
        elif laplacian != "exact":
            raise ValueError(f"laplacian must be 'exact' or 'central', got {laplacian!r}")
        k2 = np.add.outer(k2, k**2) if i else k**2
    return np.stack([np.fft.irfftn(hat * np.exp(-diffusivity * k2 * t), s=shape, axes=axes) for t in times])


def burgers_spectral(u0: np.ndarray, length: float, viscosity: float, times, *, refine: int = 4,
                     max_cfl: float = 0.25) -> np.ndarray:
    """Periodic 1D viscous Burgers by dealiased pseudo-spectral ETDRK4 on a ``refine`` times finer grid.

    Args:
        u0: initial velocity ``(..., N)`` at the cell centres of ``N`` cells on ``[0, length)``.
        length: domain length ``L``.
        viscosity: ``nu > 0``.
        times: increasing frame times, the first ``>= 0``.
        refine: the fine grid has ``refine * N`` points (an even integer >= 2).
        max_cfl: internal step ``h <= max_cfl * dx_fine / max|u0|`` (every frame interval is split
            into equal steps); ETDRK4 is fourth order, so ``h`` is far below what the data resolve.

    Returns:
        ``(len(times), ..., N)`` at the same cell centres.
    """
    u0 = np.asarray(u0, dtype=np.float64)
    n = u0.shape[-1]
    if refine < 2 or refine % 2:
        raise ValueError(f"refine must be an even integer >= 2, got {refine}")
    m = refine * n
    v = _to_fine(u0, m)  # rfft coefficients on x_j = j L / m
    k = 2 * np.pi * np.fft.rfftfreq(m, d=length / m)
    keep = np.arange(k.size) < m / 3  # 2/3 rule for the quadratic term
    g = -0.5j * k * keep
    lin = -viscosity * k**2
    speed = max(np.abs(u0).max(), 1e-12)
    h_max = max_cfl * (length / m) / speed

    def nonlinear(w):
        return g * np.fft.rfft(np.fft.irfft(w, n=m) ** 2)

    out, t_now, coeffs = [], 0.0, {}
    for t in times:
        span = t - t_now
        if span < -1e-12:
            raise ValueError(f"times must be increasing and >= 0, got {list(times)}")
        steps = int(np.ceil(span / h_max - 1e-9)) if span > 0 else 0
        if steps:
            h = span / steps
            if h not in coeffs:
                coeffs[h] = _etdrk4_coefficients(lin, h)
            e, e2, q, f1, f2, f3 = coeffs[h]
            for _ in range(steps):
                nv = nonlinear(v)
                a = e2 * v + q * nv
                na = nonlinear(a)
                b = e2 * v + q * na
                nb = nonlinear(b)
                c = e2 * a + q * (2 * nb - nv)
                nc = nonlinear(c)
                v = e * v + f1 * nv + 2 * f2 * (na + nb) + f3 * nc
        t_now = t
        out.append(_to_centres(v, n, m))
    return np.stack(out)


def _etdrk4_coefficients(lin: np.ndarray, h: float, points: int = 64):
    """ETDRK4 weights for the diagonal linear part ``lin`` (Kassam & Trefethen's contour mean)."""
    r = np.exp(1j * np.pi * (np.arange(1, points + 1) - 0.5) / points)
    lr = h * lin[:, None] + r[None, :]
    q = h * np.real(np.mean((np.exp(lr / 2) - 1) / lr, axis=1))
    f1 = h * np.real(np.mean((-4 - lr + np.exp(lr) * (4 - 3 * lr + lr**2)) / lr**3, axis=1))
    f2 = h * np.real(np.mean((2 + lr + np.exp(lr) * (lr - 2)) / lr**3, axis=1))
    f3 = h * np.real(np.mean((-4 - 3 * lr - lr**2 + np.exp(lr) * (4 - lr)) / lr**3, axis=1))
    return np.exp(h * lin), np.exp(h * lin / 2), q, f1, f2, f3


def _to_fine(u: np.ndarray, m: int) -> np.ndarray:
    """Cell-centre values of ``n`` cells -> rfft coefficients of the interpolant on ``x_j = j L / m``."""
    n = u.shape[-1]
    c = np.fft.rfft(u)  # interpolant: u(x) = sum_k c_k e^{i k (x - dx/2)} / n
    if n % 2 == 0:
        c[..., n // 2] = 0.0  # the Nyquist mode is ambiguous at cell centres: dropped
    j = np.arange(c.shape[-1])
    shift = np.exp(-1j * np.pi * j / n)  # e^{-i k dx/2} with k dx = 2 pi j / n
    out = np.zeros(u.shape[:-1] + (m // 2 + 1,), dtype=complex)
    out[..., : c.shape[-1]] = c * shift * (m / n)
    return out


def _to_centres(v: np.ndarray, n: int, m: int) -> np.ndarray:
    """Fine rfft coefficients -> values at the ``n`` cell centres (``(i + 1/2) L / n`` = fine points
    ``(m / n) i + m / 2n``, an integer index since ``m / n`` is even)."""
    fine = np.fft.irfft(v, n=m)
    r = m // n
    return fine[..., r // 2::r]
