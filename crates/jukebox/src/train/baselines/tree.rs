//! A CART decision tree with Gini impurity, scikit-learn's `DecisionTreeClassifier()`.
//!
//! Each node tries every feature and every threshold halfway between two neighbouring distinct
//! values, keeps the split that leaves the purest children, and stops when a node is pure,
//! cannot be split, or `max_depth` is reached; a leaf predicts its most common class. For speed,
//! every feature's row order is sorted once and each node only partitions those orders
//! ([`TreeBuilder`]), instead of sorting again at every node as linfa-trees does.

use std::time::Instant;

use super::fitting::{argmax, baseline_learner, check_rows, FitRecord, MergedRows, DEFAULT_MAX_TRAIN_ROWS};
use crate::prepare::DataFingerprint;
use crate::train::error::Result;
use crate::train::learner::Classifier;

/// A CART decision tree with Gini impurity; scikit-learn's `DecisionTreeClassifier(max_depth)`.
#[derive(Clone, Debug, PartialEq)]
pub struct DecisionTree {
    /// `None` grows the tree until leaves are pure (scikit-learn's default).
    pub max_depth: Option<usize>,
    /// Fit on at most this many training rows, a stratified subsample when there are more
    /// (`TrainingRows`); `None` fits every row. Used by `Learner::fit`, not by `fit_rows`.
    pub max_train_rows: Option<usize>,
}

impl Default for DecisionTree {
    fn default() -> Self {
        DecisionTree { max_depth: None, max_train_rows: Some(DEFAULT_MAX_TRAIN_ROWS) }
    }
}

/// One node of a fitted tree: a split (`x[feature] <= threshold` goes left) or a leaf.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Node {
    Split { feature: u32, threshold: f64, left: u32, right: u32 },
    Leaf { class: u32 },
}

/// A fitted [`DecisionTree`].
#[derive(Clone, Debug)]
pub struct FittedDecisionTree {
    /// Node 0 is the root.
    nodes: Vec<Node>,
    depth: usize,
    record: FitRecord,
}

impl FittedDecisionTree {
    /// Levels below the root (a single leaf has depth 0), as scikit-learn's `get_depth()`.
    pub fn depth(&self) -> usize {
        self.depth
    }
    /// Number of leaves, as scikit-learn's `get_n_leaves()`.
    pub fn leaves(&self) -> usize {
        self.nodes.iter().filter(|n| matches!(n, Node::Leaf { .. })).count()
    }
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }
    /// "trained on 100,000 of 879,956 rows" when fitted on a subsample of the training rows.
    pub fn rows_note(&self) -> Option<&str> {
        self.record.rows_note.as_deref()
    }
    fn predict_row(&self, row: &[f32]) -> u32 {
        let mut node = 0;
        loop {
            match self.nodes[node] {
                Node::Leaf { class } => return class,
                Node::Split { feature, threshold, left, right } => {
                    node = if (row[feature as usize] as f64) <= threshold { left } else { right } as usize;
                }
            }
        }
    }
}

/// The best split found for a node.
struct Split {
    feature: usize,
    /// Rows going left (a prefix of the node's rows in this feature's order).
    n_left: usize,
    threshold: f64,
}

/// A node still to be built: its rows (`start..end` in every feature's order), its depth, and
/// its parent's index with whether it is the left child (where to record the node's index).
struct Pending {
    start: usize,
    end: usize,
    depth: usize,
    parent: Option<(usize, bool)>,
}

/// Grows a tree. Every feature's row order is sorted once; a node owns the same range
/// `start..end` in each feature's order, and splitting it partitions those ranges in place
/// (stably, so they stay sorted) instead of sorting again.
struct TreeBuilder<'a> {
    /// Column-major copy of the features, so one feature's values sit together.
    columns: Vec<f32>,
    y: &'a [u32],
    /// How many identical rows each row stands for (see [`MergedRows`]).
    counts: &'a [u32],
    n_rows: usize,
    n_features: usize,
    n_classes: usize,
    /// `n_features` orders of `n_rows` row indices each.
    order: Vec<u32>,
    goes_left: Vec<bool>,
    scratch: Vec<u32>,
    left_counts: Vec<u32>,
}

impl TreeBuilder<'_> {
    fn best_split(&mut self, start: usize, end: usize, node_counts: &[u32]) -> Option<Split> {
        // Rows weigh their counts: every sum below is over the identical rows a row stands for.
        let n: u64 = node_counts.iter().map(|&c| c as u64).sum();
        let total_squares: u64 = node_counts.iter().map(|&c| c as u64 * c as u64).sum();
        // Gini: minimising n_l·gini_l + n_r·gini_r is maximising Σc_l²/n_l + Σc_r²/n_r, and moving
        // w rows of class c from right to left changes the sums of squares by O(1).
        let mut best: Option<(f64, Split)> = None;
        for f in 0..self.n_features {
            let order = &self.order[f * self.n_rows + start..f * self.n_rows + end];
            let values = &self.columns[f * self.n_rows..(f + 1) * self.n_rows];
            let (first, last) = (values[order[0] as usize], values[order[order.len() - 1] as usize]);
            if first >= last {
                continue; // constant in this node
            }
            self.left_counts.fill(0);
            let (mut left_squares, mut right_squares) = (0u64, total_squares);
            let mut previous = first;
            let mut n_left = 0u64;
            for (i, &row) in order.iter().enumerate() {
                let value = values[row as usize];
                // A threshold fits between the previous value and this one when they differ.
                if i > 0 && value > previous {
                    let n_right = n - n_left;
                    let proxy = left_squares as f64 / n_left as f64 + right_squares as f64 / n_right as f64;
                    if best.as_ref().is_none_or(|(b, _)| proxy > *b) {
                        // Halfway, as scikit-learn does; if rounding lands on the upper value, the lower.
                        let mut threshold = previous as f64 / 2.0 + value as f64 / 2.0;
                        if threshold >= value as f64 {
                            threshold = previous as f64;
                        }
                        best = Some((proxy, Split { feature: f, n_left: i, threshold }));
                    }
                }
                let (c, w) = (self.y[row as usize] as usize, self.counts[row as usize]);
                let (left, right, w64) =
                    (self.left_counts[c] as u64, (node_counts[c] - self.left_counts[c]) as u64, w as u64);
                // (l + w)² − l² and r² − (r − w)².
                left_squares += (2 * left + w64) * w64;
                right_squares -= (2 * right - w64) * w64;
                self.left_counts[c] += w;
                n_left += w64;
                previous = value;
            }
        }
        best.map(|(_, split)| split)
    }

    /// Moves the rows of `start..end` that go left to the front of every feature's range,
    /// keeping each order sorted.
    fn partition(&mut self, start: usize, end: usize, split: &Split) {
        let chosen = &self.order[split.feature * self.n_rows..][..end][start..];
        for (i, &row) in chosen.iter().enumerate() {
            self.goes_left[row as usize] = i < split.n_left;
        }
        for f in (0..self.n_features).filter(|&f| f != split.feature) {
            let range = &mut self.order[f * self.n_rows + start..f * self.n_rows + end];
            self.scratch.clear();
            let mut next = 0;
            for i in 0..range.len() {
                let row = range[i];
                if self.goes_left[row as usize] {
                    range[next] = row;
                    next += 1;
                } else {
                    self.scratch.push(row);
                }
            }
            range[next..].copy_from_slice(&self.scratch);
        }
    }

    fn grow(mut self, max_depth: Option<usize>) -> (Vec<Node>, usize) {
        let mut nodes = Vec::new();
        let mut depth_reached = 0;
        // Depth first, left child before right (node order as scikit-learn's builder).
        let mut stack = vec![Pending { start: 0, end: self.n_rows, depth: 0, parent: None }];
        let mut node_counts = vec![0u32; self.n_classes];
        while let Some(Pending { start, end, depth, parent }) = stack.pop() {
            let index = nodes.len();
            if let Some((p, is_left)) = parent {
                if let Node::Split { left, right, .. } = &mut nodes[p] {
                    *(if is_left { left } else { right }) = index as u32;
                }
            }
            depth_reached = depth_reached.max(depth);
            node_counts.fill(0);
            for &row in &self.order[start..end] {
                node_counts[self.y[row as usize] as usize] += self.counts[row as usize];
            }
            let weight: u32 = node_counts.iter().sum();
            let pure = node_counts.contains(&weight);
            let split = if pure || end - start < 2 || max_depth.is_some_and(|m| depth >= m) {
                None
            } else {
                self.best_split(start, end, &node_counts)
            };
            match split {
                None => nodes.push(Node::Leaf { class: argmax(&node_counts) }),
                Some(split) => {
                    self.partition(start, end, &split);
                    nodes.push(Node::Split {
                        feature: split.feature as u32,
                        threshold: split.threshold,
                        left: 0,
                        right: 0,
                    });
                    let middle = start + split.n_left;
                    stack.push(Pending { start: middle, end, depth: depth + 1, parent: Some((index, false)) });
                    stack.push(Pending { start, end: middle, depth: depth + 1, parent: Some((index, true)) });
                }
            }
        }
        (nodes, depth_reached)
    }
}

impl DecisionTree {
    /// Fits on row-major `x` (`y.len() x n_features`) with labels `y` below `n_classes`.
    pub fn fit_rows(&self, x: &[f32], y: &[u32], n_features: usize, n_classes: usize) -> Result<FittedDecisionTree> {
        check_rows("decision tree", x, y, n_features, n_classes)?;
        let started = Instant::now();
        let fingerprint = DataFingerprint::of_rows(x, y, n_features, n_classes);
        let merged = MergedRows::of(x, y, n_features);
        let (x, y, counts) = (&merged.x[..], &merged.y[..], &merged.counts[..]);
        let (n, d) = (y.len(), n_features);
        let mut columns = vec![0.0f32; n * d];
        for (i, row) in x.chunks_exact(d).enumerate() {
            for (j, &v) in row.iter().enumerate() {
                columns[j * n + i] = v;
            }
        }
        let mut order = Vec::with_capacity(n * d);
        for j in 0..d {
            let values = &columns[j * n..(j + 1) * n];
            let start = order.len();
            order.extend(0..n as u32);
            // Stable, so equal values keep row order and the fit is deterministic.
            order[start..].sort_by(|&a, &b| values[a as usize].total_cmp(&values[b as usize]));
        }
        let builder = TreeBuilder {
            columns,
            y,
            counts,
            n_rows: n,
            n_features: d,
            n_classes,
            order,
            goes_left: vec![false; n],
            scratch: Vec::with_capacity(n),
            left_counts: vec![0; n_classes],
        };
        let (nodes, depth) = builder.grow(self.max_depth);
        Ok(FittedDecisionTree { nodes, depth, record: FitRecord::new(started, fingerprint) })
    }
}

baseline_learner!(DecisionTree => FittedDecisionTree);

impl Classifier for FittedDecisionTree {
    fn name(&self) -> String {
        let depth = (self.depth > 0).then(|| format!("depth {}", self.depth));
        let details: Vec<String> = depth.into_iter().chain(self.record.rows_note.clone()).collect();
        match details.is_empty() {
            true => "decision tree".into(),
            false => format!("decision tree ({})", details.join("; ")),
        }
    }
    fn predict(&self, x: &[f32], n_rows: usize) -> Vec<u32> {
        let width = x.len().checked_div(n_rows).unwrap_or(0);
        if width == 0 {
            return vec![0; n_rows];
        }
        x.chunks_exact(width).map(|row| self.predict_row(row)).collect()
    }
    fn fit_seconds(&self) -> f64 {
        self.record.fit_seconds
    }
    fn fitted_on(&self) -> &DataFingerprint {
        &self.record.fitted_on
    }
}
