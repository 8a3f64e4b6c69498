//! A pure-Rust evaluator of gradient-boosted decision trees in a flat, cache-friendly layout.
//!
//! The trainer fits trees with LightGBM (C++); inference must not link C++, so this module
//! reads LightGBM's own text model format (`Booster::save_string`) into flat arrays and
//! evaluates them: [`TreeEnsemble::raw_score`] for one row, [`TreeEnsemble::raw_scores`] for
//! a row-major batch (tree-major over blocks of rows so a tree's nodes stay in cache), and
//! [`TreeEnsemble::contributions`] for exact TreeSHAP values (Lundberg et al. 2018, the same
//! algorithm and cover statistics LightGBM's `predict_contrib` uses) — the per-prediction
//! reasons.
//!
//! Written by hand because no maintained crate evaluates LightGBM models without linking
//! LightGBM (`lightgbm3` and `lgbm` wrap the C API). Semantics follow LightGBM 4.x
//! `tree.h`: `value <= threshold` goes left; a NaN is treated as 0.0 unless the node's
//! missing type is NaN; for missing type Zero (|x| ≤ 1e-35) or NaN the node's default
//! direction is taken; categorical nodes test membership of the integer category in the
//! node's bitset, NaN and negative categories go right.
//!
//! Parity with LightGBM's own predictions is checked by the trainer's tests on 100 000 rows.

mod lockstep;

use crate::ModelError;
use serde::{Deserialize, Serialize};

/// Bit 0 of LightGBM's `decision_type`: a categorical split.
const CATEGORICAL_MASK: u8 = 1;
/// Bit 1: missing values go left.
const DEFAULT_LEFT_MASK: u8 = 2;
/// Bit 7 (unused by LightGBM), set at load: a numerical node whose missing type is not
/// Zero, so any non-NaN value goes right exactly when `value > threshold` — the fast path.
const SIMPLE_MASK: u8 = 0x80;
/// LightGBM's `kZeroThreshold`.
const ZERO_THRESHOLD: f64 = 1e-35;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MissingType {
    None,
    Zero,
    NaN,
}

/// One internal node. Children `>= 0` are node indices (global, into `nodes`); children
/// `< 0` are leaves, `!child` indexing `leaf_values` (global).
#[derive(Debug, Clone, Copy)]
struct Node {
    /// Numerical threshold, or for a categorical node the index of its bitset.
    threshold: f64,
    feature: u32,
    left: i32,
    right: i32,
    /// Decision flags: categorical (bit 0), default-left (bit 1), missing type (bits 2–3).
    decision: u8,
}

impl Node {
    fn missing_type(&self) -> MissingType {
        match (self.decision >> 2) & 3 {
            1 => MissingType::Zero,
            2 => MissingType::NaN,
            _ => MissingType::None,
        }
    }
}

/// A categorical bitset: words of 32 bits, as LightGBM stores them.
#[derive(Debug, Clone)]
struct Bitset {
    start: usize,
    len: usize,
}

/// A trained ensemble of binary-classification trees, flattened for evaluation.
#[derive(Debug, Clone)]
pub struct TreeEnsemble {
    nodes: Vec<Node>,
    leaf_values: Vec<f64>,
    /// Per tree: its root (a node index, or `!leaf` for a single-leaf tree).
    roots: Vec<i32>,
    bitsets: Vec<Bitset>,
    bitset_words: Vec<u32>,
    /// Cover (training rows) of each node and leaf, for TreeSHAP.
    node_counts: Vec<f64>,
    leaf_counts: Vec<f64>,
    /// Per tree: expected value (cover-weighted mean leaf value) and maximum depth.
    expected: Vec<f64>,
    max_depth: Vec<usize>,
    feature_names: Vec<String>,
    sigmoid: f64,
    /// The single-row latency layout, when every split is a plain numerical one.
    lockstep: Option<lockstep::Lockstep>,
}

/// A short description of an ensemble, for manifests and logs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnsembleSummary {
    pub trees: usize,
    pub leaves: usize,
    pub max_depth: usize,
    pub features: usize,
}

fn invalid(msg: impl Into<String>) -> ModelError {
    ModelError::Invalid(msg.into())
}

/// Parses the whitespace-separated array `key` of a tree block.
fn parse_array<T: std::str::FromStr>(
    fields: &std::collections::HashMap<&str, &str>,
    key: &str,
    tree: usize,
    expected_len: usize,
) -> Result<Vec<T>, ModelError> {
    let Some(raw) = fields.get(key) else {
        return Err(invalid(format!("tree {tree}: missing `{key}`")));
    };
    let values = raw
        .split_whitespace()
        .map(|v| {
            v.parse::<T>()
                .map_err(|_| invalid(format!("tree {tree}: `{key}` has a malformed value {v:?}")))
        })
        .collect::<Result<Vec<T>, _>>()?;
    if values.len() != expected_len {
        return Err(invalid(format!(
            "tree {tree}: `{key}` has {} values, expected {expected_len}",
            values.len()
        )));
    }
    Ok(values)
}

impl TreeEnsemble {
    /// Reads a LightGBM text model (binary objective, one tree per iteration).
    pub fn from_lightgbm(text: &str) -> Result<TreeEnsemble, ModelError> {
        let (header, rest) = text
            .split_once("\nTree=")
            .map(|(h, r)| (h, Some(r)))
            .unwrap_or((text, None));
        let header_field = |key: &str| {
            header
                .lines()
                .find_map(|l| l.strip_prefix(key).and_then(|v| v.strip_prefix('=')))
        };
        if header_field("num_class") != Some("1")
            || header_field("num_tree_per_iteration") != Some("1")
        {
            return Err(invalid(
                "only single-output models (num_class=1) are supported",
            ));
        }
        let objective = header_field("objective").unwrap_or("");
        let sigmoid = match objective.split_whitespace().collect::<Vec<_>>().as_slice() {
            ["binary", rest @ ..] => rest
                .iter()
                .find_map(|p| p.strip_prefix("sigmoid:"))
                .map_or(Ok(1.0), |s| {
                    s.parse::<f64>()
                        .map_err(|_| invalid(format!("malformed objective {objective:?}")))
                })?,
            _ => {
                return Err(invalid(format!(
                    "objective {objective:?} is not supported; expected `binary`"
                )));
            }
        };
        let feature_names: Vec<String> = header_field("feature_names")
            .ok_or_else(|| invalid("missing `feature_names`"))?
            .split_whitespace()
            .map(str::to_owned)
            .collect();

        let mut ensemble = TreeEnsemble {
            nodes: Vec::new(),
            leaf_values: Vec::new(),
            roots: Vec::new(),
            bitsets: Vec::new(),
            bitset_words: Vec::new(),
            node_counts: Vec::new(),
            leaf_counts: Vec::new(),
            expected: Vec::new(),
            max_depth: Vec::new(),
            feature_names,
            sigmoid,
            lockstep: None,
        };
        let Some(rest) = rest else {
            return Ok(ensemble);
        };
        let trees_text = rest
            .split_once("end of trees")
            .map_or(rest, |(trees, _)| trees);
        for (t, block) in trees_text.split("\nTree=").enumerate() {
            ensemble.push_tree(t, block)?;
        }
        ensemble.lockstep = lockstep::Lockstep::build(
            &ensemble.nodes,
            &ensemble.leaf_values,
            &ensemble.leaf_counts,
            &ensemble.roots,
            &ensemble.max_depth,
        );
        Ok(ensemble)
    }

    fn push_tree(&mut self, t: usize, block: &str) -> Result<(), ModelError> {
        let fields: std::collections::HashMap<&str, &str> =
            block.lines().filter_map(|l| l.split_once('=')).collect();
        let count = |key: &str| -> Result<usize, ModelError> {
            fields
                .get(key)
                .and_then(|v| v.trim().parse().ok())
                .ok_or_else(|| invalid(format!("tree {t}: missing or malformed `{key}`")))
        };
        if fields.get("is_linear").is_some_and(|v| v.trim() != "0") {
            return Err(invalid(format!("tree {t}: linear trees are not supported")));
        }
        let leaves = count("num_leaves")?;
        if leaves == 0 {
            return Err(invalid(format!("tree {t}: no leaves")));
        }
        let leaf_base = self.leaf_values.len();
        let node_base = self.nodes.len();
        let leaf_values: Vec<f64> = parse_array(&fields, "leaf_value", t, leaves)?;
        if leaves == 1 {
            self.roots.push(!(leaf_base as i32));
            self.leaf_values.extend(&leaf_values);
            self.leaf_counts.push(1.0);
            self.expected.push(leaf_values[0]);
            self.max_depth.push(0);
            return Ok(());
        }
        let internal = leaves - 1;
        let features: Vec<u32> = parse_array(&fields, "split_feature", t, internal)?;
        let thresholds: Vec<f64> = parse_array(&fields, "threshold", t, internal)?;
        let decisions: Vec<u8> = parse_array(&fields, "decision_type", t, internal)?;
        let left: Vec<i32> = parse_array(&fields, "left_child", t, internal)?;
        let right: Vec<i32> = parse_array(&fields, "right_child", t, internal)?;
        let leaf_counts: Vec<f64> = parse_array(&fields, "leaf_count", t, leaves)?;
        let internal_counts: Vec<f64> = parse_array(&fields, "internal_count", t, internal)?;
        let num_cat = count("num_cat")?;
        let bitset_base = self.bitsets.len();
        if num_cat > 0 {
            let boundaries: Vec<usize> = parse_array(&fields, "cat_boundaries", t, num_cat + 1)?;
            let total = *boundaries.last().unwrap_or(&0);
            let words: Vec<u32> = parse_array(&fields, "cat_threshold", t, total)?;
            let word_base = self.bitset_words.len();
            for w in boundaries.windows(2) {
                if w[1] < w[0] {
                    return Err(invalid(format!("tree {t}: `cat_boundaries` not ascending")));
                }
                self.bitsets.push(Bitset {
                    start: word_base + w[0],
                    len: w[1] - w[0],
                });
            }
            self.bitset_words.extend(words);
        }
        let relocate = |child: i32| -> Result<i32, ModelError> {
            if child >= 0 {
                if child as usize >= internal {
                    return Err(invalid(format!("tree {t}: child {child} out of range")));
                }
                Ok(child + node_base as i32)
            } else {
                let leaf = !child as usize;
                if leaf >= leaves {
                    return Err(invalid(format!("tree {t}: leaf {leaf} out of range")));
                }
                Ok(!((leaf_base + leaf) as i32))
            }
        };
        for i in 0..internal {
            if features[i] as usize >= self.feature_names.len() {
                return Err(invalid(format!(
                    "tree {t}: split on feature {} but the model has {} features",
                    features[i],
                    self.feature_names.len()
                )));
            }
            let categorical = decisions[i] & CATEGORICAL_MASK != 0;
            let threshold = if categorical {
                let idx = thresholds[i] as usize;
                if idx >= num_cat {
                    return Err(invalid(format!(
                        "tree {t}: categorical bitset {idx} out of range"
                    )));
                }
                (bitset_base + idx) as f64
            } else {
                thresholds[i]
            };
            self.nodes.push(Node {
                threshold,
                feature: features[i],
                left: relocate(left[i])?,
                right: relocate(right[i])?,
                decision: if !categorical && (decisions[i] >> 2) & 3 != 1 {
                    decisions[i] | SIMPLE_MASK
                } else {
                    decisions[i]
                },
            });
        }
        self.node_counts.extend(&internal_counts);
        self.leaf_counts.extend(&leaf_counts);
        self.leaf_values.extend(&leaf_values);
        let total = internal_counts[0];
        self.expected.push(
            leaf_values
                .iter()
                .zip(&leaf_counts)
                .map(|(v, c)| v * c / total)
                .sum(),
        );
        let root = node_base as i32;
        self.max_depth.push(self.depth(root)?);
        self.roots.push(root);
        Ok(())
    }

    /// Depth of the subtree at `node`, refusing cycles (a malformed file must not hang us).
    fn depth(&self, root: i32) -> Result<usize, ModelError> {
        let mut max = 0;
        let mut stack = vec![(root, 0usize)];
        while let Some((node, d)) = stack.pop() {
            if d > self.nodes.len() + 1 {
                return Err(invalid("tree has a cycle"));
            }
            if node < 0 {
                max = max.max(d);
            } else {
                let n = &self.nodes[node as usize];
                stack.push((n.left, d + 1));
                stack.push((n.right, d + 1));
            }
        }
        Ok(max)
    }

    /// Feature names in model order.
    pub fn feature_names(&self) -> &[String] {
        &self.feature_names
    }

    pub fn num_features(&self) -> usize {
        self.feature_names.len()
    }

    pub fn num_trees(&self) -> usize {
        self.roots.len()
    }

    pub fn summary(&self) -> EnsembleSummary {
        EnsembleSummary {
            trees: self.roots.len(),
            leaves: self.leaf_values.len(),
            max_depth: self.max_depth.iter().copied().max().unwrap_or(0),
            features: self.feature_names.len(),
        }
    }

    #[inline]
    fn in_bitset(&self, bitset: usize, value: f64) -> bool {
        // NaN and negative categories never match (LightGBM sends them right).
        if value.is_nan() || value < 0.0 {
            return false;
        }
        let cat = value as usize;
        let b = &self.bitsets[bitset];
        let word = cat / 32;
        word < b.len && (self.bitset_words[b.start + word] >> (cat % 32)) & 1 == 1
    }

    /// The child a row goes to at `node`.
    #[inline(always)]
    fn next(&self, node: &Node, value: f64) -> i32 {
        if node.decision & CATEGORICAL_MASK != 0 {
            return if self.in_bitset(node.threshold as usize, value) {
                node.left
            } else {
                node.right
            };
        }
        let missing = node.missing_type();
        let value = if value.is_nan() && missing != MissingType::NaN {
            0.0
        } else {
            value
        };
        let is_missing = match missing {
            MissingType::None => false,
            MissingType::Zero => (-ZERO_THRESHOLD..=ZERO_THRESHOLD).contains(&value),
            MissingType::NaN => value.is_nan(),
        };
        if is_missing {
            if node.decision & DEFAULT_LEFT_MASK != 0 {
                node.left
            } else {
                node.right
            }
        } else if value <= node.threshold {
            node.left
        } else {
            node.right
        }
    }

    #[inline(always)]
    fn leaf_of(&self, root: i32, row: &[f64]) -> usize {
        let mut node = root;
        while node >= 0 {
            // SAFETY-free indexing: every child index was range-checked at load time.
            let n = &self.nodes[node as usize];
            let value = row[n.feature as usize];
            node = if n.decision & SIMPLE_MASK != 0 && !value.is_nan() {
                // Branch-free child choice: tree paths are unpredictable, a mispredicted
                // branch per level costs more than the select.
                [n.left, n.right][usize::from(value > n.threshold)]
            } else {
                self.next(n, value)
            };
        }
        !node as usize
    }

    fn check_row(&self, row: &[f64]) -> Result<(), ModelError> {
        if row.len() != self.feature_names.len() {
            return Err(ModelError::Arity {
                expected: self.feature_names.len(),
                actual: row.len(),
            });
        }
        Ok(())
    }

    /// The raw score (log-odds) of one row.
    ///
    /// Models of numerical splits take the lockstep walk (`trees/lockstep.rs`); the result
    /// is bit-identical to [`Self::raw_score_tree_by_tree`].
    pub fn raw_score(&self, row: &[f64]) -> Result<f64, ModelError> {
        self.check_row(row)?;
        Ok(match &self.lockstep {
            Some(lockstep) => lockstep.raw_score(row),
            None => self.walk_tree_by_tree(row),
        })
    }

    /// The raw score of one row, walking one tree at a time: the general path (any split,
    /// any missing value) and the baseline the lockstep walk is measured against.
    pub fn raw_score_tree_by_tree(&self, row: &[f64]) -> Result<f64, ModelError> {
        self.check_row(row)?;
        Ok(self.walk_tree_by_tree(row))
    }

    fn walk_tree_by_tree(&self, row: &[f64]) -> f64 {
        self.roots
            .iter()
            .map(|&root| self.leaf_values[self.leaf_of(root, row)])
            .sum()
    }

    /// The probability of one row (the binary objective's sigmoid of the raw score).
    pub fn probability(&self, row: &[f64]) -> Result<f64, ModelError> {
        Ok(self.sigmoid(self.raw_score(row)?))
    }

    /// The objective's link: raw score → probability.
    pub fn sigmoid(&self, raw: f64) -> f64 {
        1.0 / (1.0 + (-self.sigmoid * raw).exp())
    }

    /// Raw scores of a row-major batch (`rows.len()` must be a multiple of the feature
    /// count), on the calling thread. Evaluates tree-major over blocks of rows so each tree
    /// stays in cache; the scores are bit-identical to [`Self::raw_score`]'s.
    pub fn raw_scores(&self, rows: &[f64]) -> Result<Vec<f64>, ModelError> {
        self.raw_scores_threads(rows, 1)
    }

    /// [`Self::raw_scores`] on up to `threads` threads (scoped; each scores a contiguous
    /// share of the rows). Same scores whatever the thread count.
    pub fn raw_scores_threads(&self, rows: &[f64], threads: usize) -> Result<Vec<f64>, ModelError> {
        let width = self.feature_names.len();
        if width == 0 || !rows.len().is_multiple_of(width) {
            return Err(ModelError::Invalid(format!(
                "batch of {} values is not a whole number of rows of {width} features",
                rows.len()
            )));
        }
        let n = rows.len() / width;
        let mut out = vec![0.0; n];
        let share = n.div_ceil(threads.max(1)).max(1);
        if share >= n {
            self.score_rows(rows, width, &mut out);
        } else {
            std::thread::scope(|scope| {
                for (rows, out) in rows.chunks(share * width).zip(out.chunks_mut(share)) {
                    scope.spawn(move || self.score_rows(rows, width, out));
                }
            });
        }
        Ok(out)
    }

    /// Adds the raw scores of `rows` (row-major, `width` wide) to `out`.
    fn score_rows(&self, rows: &[f64], width: usize, out: &mut [f64]) {
        const BLOCK: usize = 64;
        for (block, scores) in rows.chunks(BLOCK * width).zip(out.chunks_mut(BLOCK)) {
            if let Some(lockstep) = &self.lockstep {
                lockstep.add_raw_scores(block, width, scores);
                continue;
            }
            for &root in &self.roots {
                for (row, score) in block.chunks_exact(width).zip(scores.iter_mut()) {
                    *score += self.leaf_values[self.leaf_of(root, row)];
                }
            }
        }
    }

    /// Exact TreeSHAP contributions of each feature to the raw score of `row`, plus the
    /// expected raw score as the last element (so the values sum to [`Self::raw_score`]).
    pub fn contributions(&self, row: &[f64]) -> Result<Vec<f64>, ModelError> {
        self.check_row(row)?;
        let mut phi = vec![0.0; self.feature_names.len() + 1];
        let deepest = self.max_depth.iter().copied().max().unwrap_or(0) + 2;
        let mut scratch = vec![PathElement::default(); deepest * (deepest + 1) / 2];
        for (t, &root) in self.roots.iter().enumerate() {
            phi[self.feature_names.len()] += self.expected[t];
            if root >= 0 {
                self.tree_shap(row, &mut phi, root, 0, &mut scratch, 0, 1.0, 1.0, -1);
            }
        }
        Ok(phi)
    }

    fn cover(&self, node: i32) -> f64 {
        if node >= 0 {
            self.node_counts[node as usize]
        } else {
            self.leaf_counts[!node as usize]
        }
    }

    /// Algorithm 2 of Lundberg, Erion & Lee, "Consistent individualized feature attribution
    /// for tree ensembles" (2018), as in LightGBM's `Tree::TreeSHAP`. `paths` holds the
    /// unique paths of all recursion levels; this level's path starts at `offset`.
    #[allow(clippy::too_many_arguments)]
    fn tree_shap(
        &self,
        row: &[f64],
        phi: &mut [f64],
        node: i32,
        mut depth: usize,
        paths: &mut [PathElement],
        parent_offset: usize,
        zero_fraction: f64,
        one_fraction: f64,
        feature: i64,
    ) {
        let offset = parent_offset + depth;
        if depth > 0 {
            paths.copy_within(parent_offset..parent_offset + depth, offset);
        }
        {
            let path = &mut paths[offset..];
            extend_path(path, depth, zero_fraction, one_fraction, feature);
        }
        if node < 0 {
            let path = &paths[offset..];
            let leaf_value = self.leaf_values[!node as usize];
            for i in 1..=depth {
                let w = unwound_path_sum(path, depth, i);
                let el = &path[i];
                phi[el.feature as usize] += w * (el.one_fraction - el.zero_fraction) * leaf_value;
            }
            return;
        }
        let n = self.nodes[node as usize];
        let hot = self.next(&n, row[n.feature as usize]);
        let cold = if hot == n.left { n.right } else { n.left };
        let w = self.cover(node);
        let hot_zero = self.cover(hot) / w;
        let cold_zero = self.cover(cold) / w;
        let mut incoming_zero = 1.0;
        let mut incoming_one = 1.0;
        let split_feature = i64::from(n.feature);
        if let Some(k) = (0..=depth).find(|&k| paths[offset + k].feature == split_feature) {
            incoming_zero = paths[offset + k].zero_fraction;
            incoming_one = paths[offset + k].one_fraction;
            unwind_path(&mut paths[offset..], depth, k);
            depth -= 1;
        }
        self.tree_shap(
            row,
            phi,
            hot,
            depth + 1,
            paths,
            offset,
            hot_zero * incoming_zero,
            incoming_one,
            split_feature,
        );
        self.tree_shap(
            row,
            phi,
            cold,
            depth + 1,
            paths,
            offset,
            cold_zero * incoming_zero,
            0.0,
            split_feature,
        );
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct PathElement {
    feature: i64,
    zero_fraction: f64,
    one_fraction: f64,
    weight: f64,
}

fn extend_path(path: &mut [PathElement], depth: usize, zero: f64, one: f64, feature: i64) {
    path[depth] = PathElement {
        feature,
        zero_fraction: zero,
        one_fraction: one,
        weight: if depth == 0 { 1.0 } else { 0.0 },
    };
    let d1 = (depth + 1) as f64;
    for i in (0..depth).rev() {
        path[i + 1].weight += one * path[i].weight * (i + 1) as f64 / d1;
        path[i].weight = zero * path[i].weight * (depth - i) as f64 / d1;
    }
}

fn unwind_path(path: &mut [PathElement], depth: usize, index: usize) {
    let one = path[index].one_fraction;
    let zero = path[index].zero_fraction;
    let mut next_one_portion = path[depth].weight;
    let d1 = (depth + 1) as f64;
    for i in (0..depth).rev() {
        if one != 0.0 {
            let tmp = path[i].weight;
            path[i].weight = next_one_portion * d1 / ((i + 1) as f64 * one);
            next_one_portion = tmp - path[i].weight * zero * (depth - i) as f64 / d1;
        } else {
            path[i].weight = path[i].weight * d1 / (zero * (depth - i) as f64);
        }
    }
    for i in index..depth {
        path[i].feature = path[i + 1].feature;
        path[i].zero_fraction = path[i + 1].zero_fraction;
        path[i].one_fraction = path[i + 1].one_fraction;
    }
}

fn unwound_path_sum(path: &[PathElement], depth: usize, index: usize) -> f64 {
    let one = path[index].one_fraction;
    let zero = path[index].zero_fraction;
    let mut next_one_portion = path[depth].weight;
    let mut total = 0.0;
    if one != 0.0 {
        for i in (0..depth).rev() {
            let tmp = next_one_portion / ((i + 1) as f64 * one);
            total += tmp;
            next_one_portion = path[i].weight - tmp * zero * (depth - i) as f64;
        }
    } else if zero != 0.0 {
        for i in (0..depth).rev() {
            total += path[i].weight / (zero * (depth - i) as f64);
        }
    }
    // Σ of the unwound weights w_i = tmp_i · (d + 1) (see `unwind_path`).
    total * (depth + 1) as f64
}

/// Two hand-written trees over features (a, b), shared by this crate's tests:
/// tree 0: a <= 1.5 ? (b <= 0.5 ? 0.1 : 0.3) : -0.2   (NaN in `a` goes left: missing type NaN, default left)
/// tree 1: a single leaf 0.05
#[cfg(test)]
pub(crate) const TEST_MODEL: &str = tests::MODEL;

#[cfg(test)]
mod tests {
    use super::*;

    /// Two hand-written trees over features (a, b):
    /// tree 0: a <= 1.5 ? (b <= 0.5 ? 0.1 : 0.3) : -0.2   (NaN in `a` goes left: missing type NaN, default left)
    /// tree 1: a single leaf 0.05
    pub(super) const MODEL: &str = "tree\nversion=v4\nnum_class=1\nnum_tree_per_iteration=1\nlabel_index=0\nmax_feature_idx=1\nobjective=binary sigmoid:1\nfeature_names=a b\nfeature_infos=[0:3] [0:1]\ntree_sizes=1 1\n\nTree=0\nnum_leaves=3\nnum_cat=0\nsplit_feature=0 1\nsplit_gain=1 1\nthreshold=1.5 0.5\ndecision_type=10 2\nleft_child=1 -1\nright_child=-3 -2\nleaf_value=0.1 0.3 -0.2\nleaf_weight=1 1 1\nleaf_count=30 10 60\ninternal_value=0 0\ninternal_weight=1 1\ninternal_count=100 40\nis_linear=0\nshrinkage=1\n\n\nTree=1\nnum_leaves=1\nnum_cat=0\nsplit_feature=\nsplit_gain=\nthreshold=\ndecision_type=\nleft_child=\nright_child=\nleaf_value=0.05\nleaf_weight=\nleaf_count=\ninternal_value=\ninternal_weight=\ninternal_count=\nis_linear=0\nshrinkage=1\n\n\nend of trees\n\nparameters:\nend of parameters\n";

    #[test]
    fn evaluates_hand_written_trees() {
        let m = TreeEnsemble::from_lightgbm(MODEL).unwrap();
        assert_eq!(m.num_trees(), 2);
        assert_eq!(m.feature_names(), ["a", "b"]);
        let close = |x: f64, y: f64| (x - y).abs() < 1e-12;
        assert!(close(m.raw_score(&[1.0, 0.0]).unwrap(), 0.1 + 0.05));
        assert!(close(m.raw_score(&[1.0, 0.7]).unwrap(), 0.3 + 0.05));
        assert!(close(m.raw_score(&[2.0, 0.0]).unwrap(), -0.2 + 0.05));
        // threshold is inclusive on the left
        assert!(close(m.raw_score(&[1.5, 0.5]).unwrap(), 0.1 + 0.05));
        // NaN in `a`: missing type NaN with default left; NaN in `b`: missing type None → 0.0
        assert!(close(
            m.raw_score(&[f64::NAN, f64::NAN]).unwrap(),
            0.1 + 0.05
        ));
        let p = m.probability(&[2.0, 0.0]).unwrap();
        assert!(close(p, 1.0 / (1.0 + (0.15f64).exp())));
        let batch = m.raw_scores(&[1.0, 0.0, 1.0, 0.7, 2.0, 0.0]).unwrap();
        assert_eq!(batch.len(), 3);
        assert!(close(batch[1], 0.35));
    }

    #[test]
    fn shap_values_sum_to_the_raw_score_and_match_hand_computation() {
        let m = TreeEnsemble::from_lightgbm(MODEL).unwrap();
        for row in [[1.0, 0.0], [1.0, 0.7], [2.0, 0.0], [2.0, 0.9]] {
            let phi = m.contributions(&row).unwrap();
            let sum: f64 = phi.iter().sum();
            assert!(
                (sum - m.raw_score(&row).unwrap()).abs() < 1e-12,
                "{row:?} {phi:?} {}",
                m.raw_score(&row).unwrap()
            );
        }
        // Expected value of tree 0: 0.3·0.1 + 0.1·0.3 + 0.6·(−0.2) = −0.06; plus 0.05.
        let phi = m.contributions(&[2.0, 0.0]).unwrap();
        assert!((phi[2] - (-0.06 + 0.05)).abs() < 1e-12);
        // Row (2, 0) lands in the a>1.5 leaf; b only matters under a<=1.5, so b's
        // contribution is  E[f | a=2, b=0] - E[f | a=2] averaged over orderings: for b,
        // f(a=2)=−0.2 regardless, and E_b-only = 0.4·(0.1 if b=0) + 0.6·(−0.2) = −0.08 vs
        // baseline −0.06 → Shapley(b) = ½[(−0.08 − (−0.06)) + (−0.2 − (−0.2))] = −0.01.
        assert!((phi[1] - (-0.01)).abs() < 1e-12, "{phi:?}");
        assert!((phi[0] - (-0.2 - (-0.06) + 0.01)).abs() < 1e-12, "{phi:?}");
    }

    #[test]
    fn rejects_malformed_models_with_a_reason() {
        let wrong_arity = MODEL.replace("left_child=1 -1", "left_child=1");
        let err = TreeEnsemble::from_lightgbm(&wrong_arity)
            .unwrap_err()
            .to_string();
        assert!(err.contains("left_child"), "{err}");
        let multiclass = MODEL.replace("num_class=1", "num_class=3");
        assert!(TreeEnsemble::from_lightgbm(&multiclass).is_err());
        let regression = MODEL.replace("objective=binary sigmoid:1", "objective=regression");
        let err = TreeEnsemble::from_lightgbm(&regression)
            .unwrap_err()
            .to_string();
        assert!(err.contains("regression"), "{err}");
        let out_of_range = MODEL.replace("split_feature=0 1", "split_feature=0 7");
        assert!(TreeEnsemble::from_lightgbm(&out_of_range).is_err());
        let m = TreeEnsemble::from_lightgbm(MODEL).unwrap();
        assert!(matches!(m.raw_score(&[1.0]), Err(ModelError::Arity { .. })));
        assert!(m.raw_scores(&[1.0, 2.0, 3.0]).is_err());
    }

    #[test]
    fn categorical_nodes_test_bitset_membership() {
        // One split on categorical feature 0: categories {1, 3, 33} go left (bitset words
        // 0b1010 and 0b10), others, NaN and negatives go right.
        let model = MODEL
            .replace(
                "num_leaves=3\nnum_cat=0\nsplit_feature=0 1",
                "num_leaves=3\nnum_cat=1\nsplit_feature=0 1",
            )
            .replace(
                "threshold=1.5 0.5\ndecision_type=10 2",
                "threshold=0 0.5\ndecision_type=1 2\ncat_boundaries=0 2\ncat_threshold=10 2",
            );
        let m = TreeEnsemble::from_lightgbm(&model).unwrap();
        let left = 0.1 + 0.05;
        let right = -0.2 + 0.05;
        for (cat, expected) in [
            (1.0, left),
            (3.0, left),
            (33.0, left),
            (0.0, right),
            (2.0, right),
            (64.0, right),
            (-1.0, right),
            (f64::NAN, right),
        ] {
            assert!(
                (m.raw_score(&[cat, 0.0]).unwrap() - expected).abs() < 1e-12,
                "category {cat}"
            );
        }
    }
}

/// Random LightGBM text models for property tests: trees of random shape over a small set
/// of thresholds, so generated rows hit split values exactly.
#[cfg(test)]
mod random_models {
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    pub(super) const THRESHOLDS: [f64; 5] = [-1.0, -0.25, 0.0, 0.5, 1.0];

    struct TreeText {
        features: Vec<usize>,
        thresholds: Vec<f64>,
        decisions: Vec<u8>,
        left: Vec<i32>,
        right: Vec<i32>,
        leaf_values: Vec<f64>,
    }

    /// Appends a subtree of `leaves` leaves; returns its child reference (node index, or
    /// `!leaf`).
    fn grow(
        t: &mut TreeText,
        leaves: usize,
        features: usize,
        decisions: &[u8],
        rng: &mut ChaCha8Rng,
    ) -> i32 {
        if leaves == 1 {
            t.leaf_values.push(rng.random_range(-1.0..1.0));
            return !(t.leaf_values.len() as i32 - 1);
        }
        let at = t.features.len();
        t.features.push(rng.random_range(0..features));
        t.thresholds
            .push(THRESHOLDS[rng.random_range(0..THRESHOLDS.len())]);
        t.decisions
            .push(decisions[rng.random_range(0..decisions.len())]);
        t.left.push(0);
        t.right.push(0);
        // Skewed splits make deep, unbalanced trees like LightGBM's leaf-wise growth.
        let left_leaves = if rng.random_bool(0.5) {
            1
        } else {
            rng.random_range(1..leaves)
        };
        let l = grow(t, left_leaves, features, decisions, rng);
        let r = grow(t, leaves - left_leaves, features, decisions, rng);
        t.left[at] = l;
        t.right[at] = r;
        at as i32
    }

    fn join<T: ToString>(values: &[T]) -> String {
        values
            .iter()
            .map(T::to_string)
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// A model of `trees` trees of `leaves` leaves each; every split's `decision_type` is
    /// drawn from `decisions`.
    pub(super) fn model(
        trees: usize,
        leaves: std::ops::RangeInclusive<usize>,
        features: usize,
        decisions: &[u8],
        seed: u64,
    ) -> String {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let names: Vec<String> = (0..features).map(|f| format!("f{f}")).collect();
        let mut text = format!(
            "tree\nversion=v4\nnum_class=1\nnum_tree_per_iteration=1\nlabel_index=0\nmax_feature_idx={}\nobjective=binary sigmoid:1\nfeature_names={}\n\n",
            features - 1,
            names.join(" ")
        );
        for i in 0..trees {
            let leaves = rng.random_range(leaves.clone());
            let mut t = TreeText {
                features: vec![],
                thresholds: vec![],
                decisions: vec![],
                left: vec![],
                right: vec![],
                leaf_values: vec![],
            };
            grow(&mut t, leaves, features, decisions, &mut rng);
            let counts = join(&vec![1; leaves]);
            let internal_counts = join(&vec![leaves; leaves - 1]);
            text += &format!(
                "Tree={i}\nnum_leaves={leaves}\nnum_cat=0\nsplit_feature={}\nthreshold={}\ndecision_type={}\nleft_child={}\nright_child={}\nleaf_value={}\nleaf_count={counts}\ninternal_count={internal_counts}\nis_linear=0\nshrinkage=1\n\n\n",
                join(&t.features),
                join(&t.thresholds),
                join(&t.decisions),
                join(&t.left),
                join(&t.right),
                join(&t.leaf_values),
            );
        }
        text + "end of trees\n"
    }

    /// Rows mixing exact thresholds, values between them, values beyond them and NaN.
    pub(super) fn rows(n: usize, features: usize, seed: u64) -> Vec<Vec<f64>> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        (0..n)
            .map(|_| {
                (0..features)
                    .map(|_| match rng.random_range(0..4) {
                        0 => THRESHOLDS[rng.random_range(0..THRESHOLDS.len())],
                        1 => rng.random_range(-1.5..1.5),
                        2 => rng.random_range(-1e6..1e6),
                        _ => f64::NAN,
                    })
                    .collect()
            })
            .collect()
    }
}

#[cfg(test)]
mod lockstep_tests {
    use super::random_models::{model, rows};
    use super::*;

    /// `decision_type` of plain numerical splits: missing type None or NaN (bits 2–3),
    /// default left or right (bit 1).
    const NUMERICAL: [u8; 4] = [0, 2, 8, 10];

    #[test]
    fn lockstep_walk_is_bit_identical_to_the_tree_by_tree_walk() {
        // Tree counts around and off multiples of the lane count; up to 63 leaves; rows with
        // NaN under every missing type and default direction.
        for (seed, trees) in [(1, 1), (2, 7), (3, 8), (4, 9), (5, 100), (6, 503)] {
            let m =
                TreeEnsemble::from_lightgbm(&model(trees, 1..=63, 6, &NUMERICAL, seed)).unwrap();
            assert_eq!(m.num_trees(), trees);
            assert!(
                m.lockstep.is_some(),
                "numerical splits get the lockstep layout"
            );
            // 403 rows: whole lane groups and a remainder, in blocks of 64 and a last block.
            let rows = rows(403, 6, seed + 100);
            let batch = m.raw_scores(&rows.concat()).unwrap();
            let threaded = m.raw_scores_threads(&rows.concat(), 3).unwrap();
            assert_eq!(batch, threaded);
            for (row, batch) in rows.iter().zip(batch) {
                let lockstep = m.raw_score(row).unwrap();
                let reference = m.raw_score_tree_by_tree(row).unwrap();
                assert_eq!(lockstep.to_bits(), reference.to_bits(), "row {row:?}");
                assert_eq!(batch.to_bits(), reference.to_bits(), "batch row {row:?}");
            }
        }
    }

    #[test]
    fn nan_follows_each_nodes_missing_type() {
        // Missing type NaN, default right (8): NaN goes right, which `NaN > threshold` alone
        // would get wrong; missing type None (0): NaN is read as 0.0.
        for decision in [8, 0] {
            let m = TreeEnsemble::from_lightgbm(&model(50, 31..=31, 4, &[decision], 7)).unwrap();
            assert!(m.lockstep.is_some());
            let row = [f64::NAN, 0.3, f64::NAN, -2.0];
            let reference = m.raw_score_tree_by_tree(&row).unwrap();
            assert_eq!(m.raw_score(&row).unwrap().to_bits(), reference.to_bits());
            // NaN is not scored as if it always went left (as -inf would).
            let low = [f64::NEG_INFINITY, 0.3, f64::NEG_INFINITY, -2.0];
            assert_ne!(reference, m.raw_score(&low).unwrap());
        }
    }

    #[test]
    fn zero_as_missing_models_keep_the_general_walk() {
        // Missing type Zero (4): zeros take the default direction, which one comparison
        // cannot express, so no lockstep layout is built and scores stay exact.
        let m = TreeEnsemble::from_lightgbm(&model(20, 1..=31, 4, &[4, 0], 8)).unwrap();
        assert!(m.lockstep.is_none());
        let row = [0.0, 0.0, 0.5, f64::NAN];
        assert_eq!(m.raw_score(&row).unwrap(), m.walk_tree_by_tree(&row));
    }
}
