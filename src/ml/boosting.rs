//! Gradient-boosted regression trees with an absolute-error (or, more
//! generally, quantile) loss: LAD-TreeBoost over histogram trees.
//!
//! Each round fits a shallow tree to the loss's pseudo-residuals (for the
//! median: the sign of each residual), then sets every leaf to the quantile
//! of the residuals that fall in it — the exact line search for this loss —
//! shrunk by the learning rate. Features are binned once into at most
//! [`BINS`] quantile bins, so growing a node costs one pass over its rows.
//!
//! Written here rather than taken from a crate: of the crates that offer
//! boosting, one cannot start on `wasm32-unknown-unknown` (it asks for the
//! thread count and the clock when it trains), one has no absolute loss, and
//! the one that has it works in `f32` and panics on bad input. This one is
//! deterministic (no sampling), `f64` throughout, and small.

use serde::{Deserialize, Serialize};

/// Most bins per feature.
pub const BINS: usize = 64;

/// How a boosted model is grown.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct BoostSettings {
    /// Boosting rounds (trees).
    pub rounds: usize,
    /// Shrinkage applied to every tree.
    pub learning_rate: f64,
    /// Depth of each tree.
    pub max_depth: u16,
    /// Fewest rows in a leaf.
    pub min_leaf: usize,
    /// The quantile the model predicts (0.5: the median, absolute loss).
    pub quantile: f64,
}

impl Default for BoostSettings {
    fn default() -> Self {
        BoostSettings {
            rounds: 200,
            learning_rate: 0.1,
            max_depth: 6,
            min_leaf: 20,
            quantile: 0.5,
        }
    }
}

/// A node of a tree: a split, or a leaf with its value.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
enum Node {
    Split {
        feature: u32,
        /// Rows with a value `<=` this go left.
        threshold: f64,
        left: u32,
        right: u32,
    },
    Leaf(f64),
}

/// One tree, nodes in a flat list (the root first).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Tree {
    nodes: Vec<Node>,
}

impl Tree {
    fn predict(&self, row: &[f64]) -> f64 {
        let mut at = 0usize;
        loop {
            match &self.nodes[at] {
                Node::Leaf(v) => return *v,
                Node::Split {
                    feature,
                    threshold,
                    left,
                    right,
                } => {
                    let v = row.get(*feature as usize).copied().unwrap_or(0.0);
                    // Missing values (NaN) go left, always.
                    at = if v <= *threshold || v.is_nan() {
                        *left as usize
                    } else {
                        *right as usize
                    };
                }
            }
        }
    }
}

/// A trained boosted model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Boosted {
    base: f64,
    learning_rate: f64,
    trees: Vec<Tree>,
}

impl Boosted {
    /// The prediction for one row.
    pub fn predict_row(&self, row: &[f64]) -> f64 {
        self.base + self.learning_rate * self.trees.iter().map(|t| t.predict(row)).sum::<f64>()
    }

    /// Whether the model can be used: every tree non-empty, every split's
    /// children after it and inside the tree (so a walk always ends at a
    /// leaf), every number finite. Bytes from elsewhere (a shared log's
    /// server) are checked so before the first prediction: a split pointing
    /// back at its parent would otherwise loop for ever.
    pub fn check(&self) -> Result<(), String> {
        if !self.base.is_finite() || !self.learning_rate.is_finite() {
            return Err("a base or learning rate that is not a number".into());
        }
        for (t, tree) in self.trees.iter().enumerate() {
            if tree.nodes.is_empty() {
                return Err(format!("tree {t} has no nodes"));
            }
            let len = tree.nodes.len() as u64;
            for (i, node) in tree.nodes.iter().enumerate() {
                let ok = match node {
                    Node::Leaf(v) => v.is_finite(),
                    Node::Split {
                        threshold,
                        left,
                        right,
                        ..
                    } => {
                        !threshold.is_nan()
                            && (i as u64) < *left as u64
                            && (i as u64) < *right as u64
                            && (*left as u64) < len
                            && (*right as u64) < len
                    }
                };
                if !ok {
                    return Err(format!("tree {t}, node {i} is malformed"));
                }
            }
        }
        Ok(())
    }

    /// Trees grown.
    pub fn trees(&self) -> usize {
        self.trees.len()
    }
}

/// The `q`-quantile of `values` (which it reorders); 0 for none.
pub fn quantile(values: &mut [f64], q: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let k = ((values.len() - 1) as f64 * q.clamp(0.0, 1.0)).round() as usize;
    let (_, v, _) = values.select_nth_unstable_by(k, f64::total_cmp);
    *v
}

/// Bin edges per feature: at most [`BINS`] − 1 cut points between distinct values.
fn bin_edges(rows: &[Vec<f64>], width: usize) -> Vec<Vec<f64>> {
    // A sample is enough to place the cuts.
    let step = (rows.len() / 20_000).max(1);
    (0..width)
        .map(|f| {
            let mut values: Vec<f64> = rows
                .iter()
                .step_by(step)
                .map(|r| r[f])
                .filter(|v| v.is_finite())
                .collect();
            values.sort_by(f64::total_cmp);
            values.dedup();
            if values.len() <= BINS {
                // Cut halfway between neighbours.
                return values.windows(2).map(|w| (w[0] + w[1]) / 2.0).collect();
            }
            let mut cuts: Vec<f64> = (1..BINS)
                .map(|i| {
                    let at = i * values.len() / BINS;
                    (values[at - 1] + values[at]) / 2.0
                })
                .collect();
            cuts.dedup();
            cuts
        })
        .collect()
}

fn bin_of(edges: &[f64], v: f64) -> u8 {
    if v.is_nan() {
        return 0;
    }
    edges.partition_point(|e| *e < v) as u8
}

/// Train on `rows` (all of one width) against targets `y`.
pub fn train(rows: &[Vec<f64>], y: &[f64], settings: &BoostSettings) -> Result<Boosted, String> {
    let n = rows.len();
    if n == 0 || y.len() != n {
        return Err("boosting needs as many targets as rows, and at least one".into());
    }
    let width = rows[0].len();
    if rows.iter().any(|r| r.len() != width) {
        return Err("every row must have the same number of features".into());
    }
    let q = settings.quantile.clamp(0.01, 0.99);
    let edges = bin_edges(rows, width);
    // Binned rows, feature-major: bins[f][i].
    let bins: Vec<Vec<u8>> = (0..width)
        .map(|f| rows.iter().map(|r| bin_of(&edges[f], r[f])).collect())
        .collect();
    let base = quantile(&mut y.to_vec(), q);
    let mut current = vec![base; n];
    let mut trees = Vec::with_capacity(settings.rounds);
    let mut residual = vec![0.0; n];
    let mut gradient = vec![0.0; n];
    let min_leaf = settings.min_leaf.max(1);
    for _ in 0..settings.rounds {
        for i in 0..n {
            residual[i] = y[i] - current[i];
            // The quantile loss's negative gradient.
            gradient[i] = if residual[i] > 0.0 {
                q
            } else if residual[i] < 0.0 {
                q - 1.0
            } else {
                0.0
            };
        }
        let mut grower = Grower {
            bins: &bins,
            edges: &edges,
            gradient: &gradient,
            residual: &residual,
            min_leaf,
            max_depth: settings.max_depth as usize,
            quantile: q,
            nodes: Vec::new(),
            leaf_of: vec![0; n],
        };
        let all: Vec<u32> = (0..n as u32).collect();
        grower.grow(all, 0);
        let Grower { nodes, leaf_of, .. } = grower;
        for i in 0..n {
            if let Node::Leaf(v) = nodes[leaf_of[i] as usize] {
                current[i] += settings.learning_rate * v;
            }
        }
        trees.push(Tree { nodes });
    }
    Ok(Boosted {
        base,
        learning_rate: settings.learning_rate,
        trees,
    })
}

struct Grower<'a> {
    bins: &'a [Vec<u8>],
    edges: &'a [Vec<f64>],
    gradient: &'a [f64],
    residual: &'a [f64],
    min_leaf: usize,
    max_depth: usize,
    quantile: f64,
    nodes: Vec<Node>,
    /// The leaf each training row ended in.
    leaf_of: Vec<u32>,
}

impl Grower<'_> {
    /// Grow the subtree for `rows`; returns its node index.
    fn grow(&mut self, rows: Vec<u32>, depth: usize) -> u32 {
        let at = self.nodes.len() as u32;
        self.nodes.push(Node::Leaf(0.0));
        let split = if depth < self.max_depth && rows.len() >= 2 * self.min_leaf {
            self.best_split(&rows)
        } else {
            None
        };
        match split {
            Some((feature, bin)) => {
                let (left, right): (Vec<u32>, Vec<u32>) = rows
                    .into_iter()
                    .partition(|&i| self.bins[feature][i as usize] <= bin);
                let l = self.grow(left, depth + 1);
                let r = self.grow(right, depth + 1);
                self.nodes[at as usize] = Node::Split {
                    feature: feature as u32,
                    threshold: self.edges[feature][bin as usize],
                    left: l,
                    right: r,
                };
            }
            None => {
                let mut values: Vec<f64> =
                    rows.iter().map(|&i| self.residual[i as usize]).collect();
                self.nodes[at as usize] = Node::Leaf(quantile(&mut values, self.quantile));
                for &i in &rows {
                    self.leaf_of[i as usize] = at;
                }
            }
        }
        at
    }

    /// The (feature, bin) split that most reduces the squared error of the
    /// gradients, if any improves it and leaves `min_leaf` rows each side.
    fn best_split(&self, rows: &[u32]) -> Option<(usize, u8)> {
        let n = rows.len() as f64;
        let total: f64 = rows.iter().map(|&i| self.gradient[i as usize]).sum();
        let parent = total * total / n;
        let mut best: Option<(f64, usize, u8)> = None;
        let mut sums = [0.0f64; BINS];
        let mut counts = [0u32; BINS];
        for (f, column) in self.bins.iter().enumerate() {
            let cuts = self.edges[f].len();
            if cuts == 0 {
                continue;
            }
            sums[..=cuts].fill(0.0);
            counts[..=cuts].fill(0);
            for &i in rows {
                let b = column[i as usize] as usize;
                sums[b] += self.gradient[i as usize];
                counts[b] += 1;
            }
            let (mut left_sum, mut left_n) = (0.0, 0usize);
            for b in 0..cuts {
                left_sum += sums[b];
                left_n += counts[b] as usize;
                let right_n = rows.len() - left_n;
                if left_n < self.min_leaf || right_n < self.min_leaf {
                    continue;
                }
                let right_sum = total - left_sum;
                let gain = left_sum * left_sum / left_n as f64
                    + right_sum * right_sum / right_n as f64
                    - parent;
                if gain > 1e-12 && best.is_none_or(|(g, _, _)| gain > g) {
                    best = Some((gain, f, b as u8));
                }
            }
        }
        best.map(|(_, f, b)| (f, b))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::Rng;

    #[test]
    fn trees_that_could_not_be_walked_are_refused_before_any_prediction() {
        let rows: Vec<Vec<f64>> = (0..200).map(|i| vec![i as f64]).collect();
        let y: Vec<f64> = (0..200).map(|i| if i < 100 { 1.0 } else { 5.0 }).collect();
        let settings = BoostSettings {
            rounds: 5,
            ..Default::default()
        };
        let good = train(&rows, &y, &settings).unwrap();
        assert_eq!(good.check(), Ok(()));
        let split = |left, right| Node::Split {
            feature: 0,
            threshold: 1.0,
            left,
            right,
        };
        let forged = |nodes: Vec<Node>| Boosted {
            trees: vec![Tree { nodes }],
            ..good.clone()
        };
        // A split pointing at itself, at its parent, past the end; no nodes;
        // a leaf that is not a number.
        for nodes in [
            vec![split(0, 1), Node::Leaf(1.0)],
            vec![split(1, 2), split(0, 2), Node::Leaf(1.0)],
            vec![split(1, 9), Node::Leaf(1.0)],
            vec![],
            vec![Node::Leaf(f64::NAN)],
        ] {
            assert!(forged(nodes.clone()).check().is_err(), "{nodes:?}");
        }
    }

    #[test]
    fn it_learns_a_step_and_predicts_the_median_not_the_mean() {
        let mut rng = Rng::new(3);
        let mut rows = Vec::new();
        let mut y = Vec::new();
        for _ in 0..4000 {
            let x = rng.unit();
            // Skewed noise: the median of exponential(1) is ln 2, its mean 1.
            let noise = rng.exponential(1.0);
            rows.push(vec![x, rng.unit()]);
            y.push(if x < 0.5 { 10.0 } else { 20.0 } + noise);
        }
        let m = train(&rows, &y, &BoostSettings::default()).unwrap();
        let low = m.predict_row(&[0.25, 0.5]);
        let high = m.predict_row(&[0.75, 0.5]);
        let ln2 = std::f64::consts::LN_2;
        assert!((low - (10.0 + ln2)).abs() < 0.25, "{low}");
        assert!((high - (20.0 + ln2)).abs() < 0.25, "{high}");
    }

    #[test]
    fn a_high_quantile_lies_above_the_median() {
        let mut rng = Rng::new(5);
        let rows: Vec<Vec<f64>> = (0..3000).map(|_| vec![rng.unit()]).collect();
        let y: Vec<f64> = rows.iter().map(|_| rng.exponential(1.0)).collect();
        let p90 = BoostSettings {
            quantile: 0.9,
            ..BoostSettings::default()
        };
        let m = train(&rows, &y, &p90).unwrap();
        let above = y
            .iter()
            .zip(&rows)
            .filter(|(t, r)| **t <= m.predict_row(r))
            .count();
        let share = above as f64 / y.len() as f64;
        assert!((0.85..=0.95).contains(&share), "{share}");
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        assert!(train(&[], &[], &BoostSettings::default()).is_err());
        assert!(train(
            &[vec![1.0], vec![1.0, 2.0]],
            &[1.0, 2.0],
            &BoostSettings::default()
        )
        .is_err());
        assert!(train(&[vec![1.0]], &[1.0, 2.0], &BoostSettings::default()).is_err());
    }
}
