//! Classic baselines: multinomial logistic regression and a CART decision tree, written for this
//! data's shape (about 12,600 training rows, 13 features, 72 classes).
//!
//! Both follow scikit-learn's definitions, so their scores can be compared with its figures:
//!
//! - [`LogisticRegression`] minimises the mean cross-entropy of a softmax over one weighted sum
//!   per class, plus an L2 penalty on the weights (not the intercepts):
//!   `(1/n) Σ −log p(yᵢ | xᵢ) + α/(2n) ‖W‖²`, which is scikit-learn's
//!   `LogisticRegression(C = 1/α)`. It starts from zero weights and takes L-BFGS steps (10
//!   remembered corrections, a Wolfe line search) until the largest gradient entry is below
//!   `tolerance` or `max_iterations` steps are taken, like scikit-learn's `lbfgs` solver.
//! - [`DecisionTree`] is CART with Gini impurity: each node tries every feature and every
//!   threshold halfway between two neighbouring distinct values, keeps the split that leaves the
//!   purest children, and stops when a node is pure, cannot be split, or `max_depth` is reached
//!   (scikit-learn's `DecisionTreeClassifier()` defaults). A leaf predicts its most common class.
//!
//! Why written here and not taken from linfa (measured in `cargo bench --workspace --bench
//! baselines`, which prints linfa's figures beside ours and scikit-learn's): linfa-logistic runs
//! its L-BFGS through argmin on freshly allocated ndarray matrices for every evaluation and took
//! 8-9.5 s here in f64 and 3.6 s in f32, against scikit-learn's 3.2-5 s; linfa-trees sorts the
//! rows again at every node and took 0.9 s in either precision, against scikit-learn's 0.1 s. This
//! code makes one pass over the rows per evaluation (scores, softmax, loss and gradient fused),
//! and the tree sorts each feature once and then only partitions those orders as it grows.
//!
//! **Every row, at the cost of the distinct ones.** The charts repeat a song on every day it
//! stays in a country's Top 50, so the training rows hold far fewer *distinct* (features, label)
//! rows than rows (the shared sample: 12,607 training rows, 4,129 distinct). Both
//! objectives are sums over rows, so both learners merge identical rows into one row with a
//! count before fitting: the cross-entropy and its gradient weigh a row by its count, and the
//! tree's class counts add counts instead of ones. That is the same fit as on every row, exactly
//! (up to the order floating-point sums are taken in), in the time of the distinct rows.
//!
//! **Row budget.** Data without that much repetition could still keep a cell busy for most of a
//! minute. So both learners fit on at most [`DEFAULT_MAX_TRAIN_ROWS`] distinct rows by default
//! (`max_train_rows`; `None` fits every row): past that, a *stratified* random subsample of that
//! many rows ([`TrainingRows`](super::rows::TrainingRows), the sweep's: every class keeps its share of the rows, drawn with
//! the split's seed), and the fitted model's name says so, e.g. "logistic regression (trained on
//! 100,000 of 879,956 rows)", so the comparison table states it ([`budgeted_rows`]).
//!
//! **Speed.** Logistic regression spends its time in one pass over the rows per evaluation. The
//! rows are cut into a fixed number of chunks, summed in a fixed order (so the weights are the
//! same, bit for bit, however many threads ran), and the chunks run on every core. The softmax's
//! exponentials use a branch-free exp (`exp_nonpositive`, as accurate as the system's) that the
//! compiler turns into vector code, and on x86-64 CPUs with AVX2 the row loop is compiled a
//! second time for AVX2 and picked at run time (plain multiplies and adds in both, never fused, so
//! both give the same numbers).
//!
//! **Where things are.** `logistic` and `tree` are the two learners; `softmax` is the logistic
//! regression's loss and `lbfgs` the method that minimises it; `fitting` is what both learners
//! do the same way (row checks, merged rows, the row budget, the fit's record).

mod fitting;
mod lbfgs;
mod logistic;
mod softmax;
mod tree;

pub use fitting::{budgeted_rows, DEFAULT_MAX_TRAIN_ROWS};
pub use logistic::{FittedLogisticRegression, LogisticRegression};
pub use tree::{DecisionTree, FittedDecisionTree};
