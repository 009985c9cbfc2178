"""numpy-job: solve a seeded linear system and print summary statistics."""
import numpy as np


def main():
    rng = np.random.default_rng(20240601)
    n = 200
    a = rng.standard_normal((n, n)) + n * np.eye(n)
    x_true = np.arange(1, n + 1, dtype=float)
    b = a @ x_true
    x = np.linalg.solve(a, b)
    err = float(np.max(np.abs(x - x_true)))
    eig = np.linalg.eigvalsh((a + a.T) / 2)
    print(f"n={n}")
    print(f"max_abs_error={err:.3e}")
    print(f"solution_ok={err < 1e-8}")
    print(f"sum={x.sum():.6f}")
    print(f"eig_min={eig.min():.3f} eig_max={eig.max():.3f}")
    if err >= 1e-8:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
