//! Safe row-major wrappers around `matrixmultiply::sgemm` for the three products a dense layer
//! needs: forward `X·W`, weight gradient `Xᵀ·dZ` and input gradient `dZ·Wᵀ`. Transposes are
//! expressed through strides, so nothing is copied.

/// `c (m x n) = a (m x k) · b (k x n) + beta * c`, all row-major.
pub(crate) fn matmul(m: usize, k: usize, n: usize, a: &[f32], b: &[f32], beta: f32, c: &mut [f32]) {
    assert!(a.len() >= m * k && b.len() >= k * n && c.len() >= m * n, "matmul buffers too small");
    // SAFETY: the asserts above keep every index the strides reach inside the slices.
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            1.0,
            a.as_ptr(),
            k as isize,
            1,
            b.as_ptr(),
            n as isize,
            1,
            beta,
            c.as_mut_ptr(),
            n as isize,
            1,
        );
    }
}

/// `c (m x n) = aᵀ · b + beta * c` where `a` is stored row-major as `k x m` and `b` as `k x n`.
pub(crate) fn matmul_at_b(m: usize, k: usize, n: usize, a: &[f32], b: &[f32], beta: f32, c: &mut [f32]) {
    assert!(a.len() >= k * m && b.len() >= k * n && c.len() >= m * n, "matmul_at_b buffers too small");
    // SAFETY: as above; aᵀ(i, p) = a[p * m + i].
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            1.0,
            a.as_ptr(),
            1,
            m as isize,
            b.as_ptr(),
            n as isize,
            1,
            beta,
            c.as_mut_ptr(),
            n as isize,
            1,
        );
    }
}

/// `c (m x n) = a · bᵀ + beta * c` where `a` is stored row-major as `m x k` and `b` as `n x k`.
pub(crate) fn matmul_a_bt(m: usize, k: usize, n: usize, a: &[f32], b: &[f32], beta: f32, c: &mut [f32]) {
    assert!(a.len() >= m * k && b.len() >= n * k && c.len() >= m * n, "matmul_a_bt buffers too small");
    // SAFETY: as above; bᵀ(p, j) = b[j * k + p].
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            1.0,
            a.as_ptr(),
            k as isize,
            1,
            b.as_ptr(),
            1,
            k as isize,
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
