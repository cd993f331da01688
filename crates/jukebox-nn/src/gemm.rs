//! Matrix products on `matrixmultiply::sgemm`: a safe row-major [`matmul`] for inference, and a
//! strided [`gemm`] for training, where each of the two parts of a step multiplies its own block
//! of columns (`X·W[:, cols]`, `Xᵀ·dZ[:, cols]`, `dZ[:, cols]·W[:, cols]ᵀ`) in matrices both
//! parts share. Transposes and column blocks are expressed through strides, so nothing is copied.

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

/// One operand of [`gemm`]: where element (0, 0) is and how far apart rows and columns are, in
/// elements. A transpose or a block of columns of a row-major matrix is only other strides.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Strided {
    pub ptr: *const f32,
    pub row_stride: usize,
    pub col_stride: usize,
}

/// `c (m x n, rows `c_row_stride` apart) = a (m x k) · b (k x n) + beta * c`.
///
/// # Safety
/// Every element the strides reach (`m x k` of `a`, `k x n` of `b`, `m x n` of `c`) must be
/// inside live allocations, and no other thread may access the `c` elements meanwhile.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn gemm(
    m: usize,
    k: usize,
    n: usize,
    a: Strided,
    b: Strided,
    beta: f32,
    c: *mut f32,
    c_row_stride: usize,
) {
    if m == 0 || n == 0 {
        return;
    }
    // SAFETY: the caller's contract; matrixmultiply reads and writes exactly those elements.
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            1.0,
            a.ptr,
            a.row_stride as isize,
            a.col_stride as isize,
            b.ptr,
            b.row_stride as isize,
            b.col_stride as isize,
            beta,
            c,
            c_row_stride as isize,
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
    fn plain_and_strided_products_match_a_naive_product() {
        let (m, k, n) = (5, 7, 3);
        let a: Vec<f32> = (0..m * k).map(|v| (v as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..k * n).map(|v| (v as f32 * 0.11).cos()).collect();

        let mut c = vec![1.0; m * n];
        matmul(m, k, n, &a, &b, 0.0, &mut c);
        close(&c, &reference(m, k, n, |i, p| a[i * k + p], |p, j| b[p * n + j]));

        // aᵀ and a block of b's columns, through strides: c (k x 2) = aᵀ · b[:, 1..3].
        let mut c = vec![0.5; k * 2];
        let at = Strided { ptr: a.as_ptr(), row_stride: 1, col_stride: k };
        let b_block = Strided { ptr: b[1..].as_ptr(), row_stride: n, col_stride: 1 };
        // SAFETY: a is m x k and b is k x n, so both views stay inside them; c is k x 2.
        unsafe { gemm(k, m, 2, at, b_block, 1.0, c.as_mut_ptr(), 2) };
        let mut expected = reference(k, m, 2, |i, p| a[p * k + i], |p, j| b[p * n + 1 + j]);
        expected.iter_mut().for_each(|v| *v += 0.5);
        close(&c, &expected);
    }
}
