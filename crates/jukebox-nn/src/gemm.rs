//! Safe row-major wrappers around `matrixmultiply::sgemm` for the three products a dense layer
//! needs: forward `X·W`, weight gradient `Xᵀ·dZ` and input gradient `dZ·Wᵀ`. Transposes are
//! expressed through strides, so nothing is copied.

/// How an operand is stored: as the product uses it, or as its transpose (row-major either way).
#[derive(Clone, Copy)]
enum Stored {
    AsUsed,
    Transposed,
}

/// `c (m x n) = a (m x k) · b (k x n) + beta * c`, all row-major.
pub(crate) fn matmul(m: usize, k: usize, n: usize, a: &[f32], b: &[f32], beta: f32, c: &mut [f32]) {
    product(m, k, n, (a, Stored::AsUsed), (b, Stored::AsUsed), beta, c);
}

/// `c (m x n) = aᵀ · b + beta * c` where `a` is stored row-major as `k x m` and `b` as `k x n`.
pub(crate) fn matmul_at_b(m: usize, k: usize, n: usize, a: &[f32], b: &[f32], beta: f32, c: &mut [f32]) {
    product(m, k, n, (a, Stored::Transposed), (b, Stored::AsUsed), beta, c);
}

/// `c (m x n) = a · bᵀ + beta * c` where `a` is stored row-major as `m x k` and `b` as `n x k`.
pub(crate) fn matmul_a_bt(m: usize, k: usize, n: usize, a: &[f32], b: &[f32], beta: f32, c: &mut [f32]) {
    product(m, k, n, (a, Stored::AsUsed), (b, Stored::Transposed), beta, c);
}

/// `c (m x n) = a (m x k) · b (k x n) + beta * c`, each of `a` and `b` stored as used or
/// transposed. The strides follow from the layout, so every index they reach is inside the
/// slices once their lengths are checked.
fn product(m: usize, k: usize, n: usize, a: (&[f32], Stored), b: (&[f32], Stored), beta: f32, c: &mut [f32]) {
    let ((a, a_stored), (b, b_stored)) = (a, b);
    assert!(a.len() >= m * k && b.len() >= k * n && c.len() >= m * n, "matrix product buffers too small");
    // (row stride, column stride) of a as m x k and b as k x n: a stored k x m has aᵀ(i, p) =
    // a[p * m + i]; b stored n x k has bᵀ(p, j) = b[j * k + p].
    let (a_rows, a_columns) = match a_stored {
        Stored::AsUsed => (k as isize, 1),
        Stored::Transposed => (1, m as isize),
    };
    let (b_rows, b_columns) = match b_stored {
        Stored::AsUsed => (n as isize, 1),
        Stored::Transposed => (1, k as isize),
    };
    // SAFETY: the assert above and the strides of the layouts keep every index inside the slices.
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            1.0,
            a.as_ptr(),
            a_rows,
            a_columns,
            b.as_ptr(),
            b_rows,
            b_columns,
            beta,
            c.as_mut_ptr(),
            n as isize,
            1,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Naive triple loop over explicit index functions, the reference for all three layouts.
    fn reference(
        m: usize,
        k: usize,
        n: usize,
        a: impl Fn(usize, usize) -> f32,
        b: impl Fn(usize, usize) -> f32,
    ) -> Vec<f32> {
        let mut c = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                c[i * n + j] = (0..k).map(|p| a(i, p) * b(p, j)).sum();
            }
        }
        c
    }

    fn close(x: &[f32], y: &[f32]) {
        assert_eq!(x.len(), y.len());
        for (i, (a, b)) in x.iter().zip(y).enumerate() {
            assert!((a - b).abs() < 1e-4, "element {i}: {a} vs {b}");
        }
    }

    #[test]
    fn all_three_layouts_match_a_naive_product() {
        let (m, k, n) = (5, 7, 3);
        let a: Vec<f32> = (0..m * k).map(|v| (v as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..k * n).map(|v| (v as f32 * 0.11).cos()).collect();

        let mut c = vec![1.0; m * n];
        matmul(m, k, n, &a, &b, 0.0, &mut c);
        close(&c, &reference(m, k, n, |i, p| a[i * k + p], |p, j| b[p * n + j]));

        // a as k x m (transposed use), b as k x n.
        let at: Vec<f32> = (0..k * m).map(|v| (v as f32 * 0.29).sin()).collect();
        let mut c = vec![0.5; m * n];
        matmul_at_b(m, k, n, &at, &b, 1.0, &mut c);
        let mut expected = reference(m, k, n, |i, p| at[p * m + i], |p, j| b[p * n + j]);
        expected.iter_mut().for_each(|v| *v += 0.5);
        close(&c, &expected);

        // b as n x k (transposed use).
        let bt: Vec<f32> = (0..n * k).map(|v| (v as f32 * 0.53).cos()).collect();
        let mut c = vec![0.0; m * n];
        matmul_a_bt(m, k, n, &a, &bt, 0.0, &mut c);
        close(&c, &reference(m, k, n, |i, p| a[i * k + p], |p, j| bt[j * k + p]));
    }
}
