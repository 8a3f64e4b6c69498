//! Lockstep single-row evaluation: the latency path of [`super::TreeEnsemble::raw_score`].
//!
//! Walking one tree at a time costs a mispredicted branch or a stalled dependent load at
//! almost every level: the path through a tree depends on the row, and each level's node
//! address depends on the previous comparison. Here the trees are walked [`LANES`] at a
//! time in lockstep, so the CPU overlaps [`LANES`] independent chains of loads:
//!
//! - trees are sorted by typical path length (the leaves' depths weighted by their training
//!   covers) and grouped, so the lanes of a group tend to reach their leaves at about the same
//!   step; the only data-dependent branch is the group's exit;
//! - each tree is laid out in preorder as [`Step`]s of 16 bytes; a step holds the feature,
//!   the threshold, the direction a NaN takes there and the offsets to its two children, and a
//!   leaf is a step whose offsets are both 0, so a lane that reached its leaf early stays
//!   there, and whose threshold slot holds the leaf value;
//! - a group stops as soon as a step moves no lane, so it walks the longest path this row
//!   takes through its trees, not their full depth;
//! - the per-tree leaf values are then summed in the model's tree order, so the result is
//!   bit-identical to the one-tree-at-a-time walk and to LightGBM's own sum.
//!
//! A numerical split goes right when `value > threshold`, or when the value is NaN and the
//! node sends NaN right: its default direction for missing type NaN, the direction of 0.0 for
//! missing type None (LightGBM reads NaN as 0.0 there). Both are branch-free. Categorical and
//! zero-as-missing splits do not fit that test; models with them keep the general path.

use super::{DEFAULT_LEFT_MASK, MissingType, Node, SIMPLE_MASK};

/// Trees walked together. Eight independent chains hide the L1/L2 load latency; on the
/// measured machine (docs/benchmarks.md) 4 and 6 lanes were slower, 12 about the same and 16
/// much slower (the lane state no longer fits in registers).
pub(super) const LANES: usize = 8;

thread_local! {
    /// Per-tree leaf values of the row being scored, reused across calls so the latency path
    /// does not allocate.
    static LEAF_VALUES: std::cell::RefCell<Vec<f64>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Whether a row goes right at `step` (`>` is false for NaN; the NaN direction is or-ed in
/// without a branch).
#[inline(always)]
fn goes_right(step: &Step, value: f64) -> bool {
    (value > step.value) | (value.is_nan() & step.nan_right)
}

/// The offset to the child a row takes at `step`: picked from the word already loaded with
/// the step (a select, not a second load after the comparison).
#[inline(always)]
fn child_offset(step: &Step, right: bool) -> usize {
    (if right {
        step.offsets >> 16
    } else {
        step.offsets & 0xFFFF
    }) as usize
}

/// Models with deeper trees are left to the general path: the preorder layout is built
/// recursively, and a group that walks one very deep path keeps all its lanes stepping.
const MAX_DEPTH: usize = 128;

/// One node of the lockstep layout.
#[derive(Debug, Clone, Copy)]
struct Step {
    /// The split threshold, or for a leaf its value.
    value: f64,
    feature: u16,
    /// Whether a NaN goes right here.
    nan_right: bool,
    /// Offsets from this step to the left child (low 16 bits) and the right child (high 16
    /// bits); 0 for a leaf. One word, so picking a child is a shift of a value already
    /// loaded rather than a second load after the comparison.
    offsets: u32,
}

// Four steps to a 64-byte cache line.
const _: () = assert!(std::mem::size_of::<Step>() == 16);

#[derive(Debug, Clone)]
struct Group {
    /// Most steps a lane of the group can take: the depth of its deepest tree.
    depth: usize,
    /// Each lane's root step.
    roots: [usize; LANES],
    /// Each lane's tree index in model order (`num_trees` for padding lanes).
    trees: [usize; LANES],
}

#[derive(Debug, Clone)]
pub(super) struct Lockstep {
    steps: Vec<Step>,
    groups: Vec<Group>,
    /// Each tree's root step, in model order (the batch walk goes tree by tree).
    tree_roots: Vec<usize>,
    /// Each tree's depth, in model order: the batch walk's step bound.
    tree_depths: Vec<usize>,
    num_trees: usize,
}

impl Lockstep {
    /// Builds the layout, or `None` if the model has a split the single comparison cannot
    /// express, a tree too large for 16-bit child offsets or a feature index above 65 535.
    pub(super) fn build(
        nodes: &[Node],
        leaf_values: &[f64],
        leaf_counts: &[f64],
        roots: &[i32],
        depths: &[usize],
    ) -> Option<Lockstep> {
        if nodes.iter().any(|n| n.decision & SIMPLE_MASK == 0)
            || depths.iter().any(|&d| d > MAX_DEPTH)
        {
            return None;
        }
        // Group trees whose typical paths are about as long, so a group's lanes reach their
        // leaves at about the same step.
        let typical: Vec<f64> = roots
            .iter()
            .map(|&root| mean_leaf_depth(nodes, leaf_counts, root))
            .collect();
        let mut order: Vec<usize> = (0..roots.len()).collect();
        order.sort_by(|&a, &b| typical[a].total_cmp(&typical[b]));
        // Step 0 is a leaf of value 0 that padding lanes sit on.
        let mut steps = vec![Step {
            value: 0.0,
            feature: 0,
            nan_right: false,
            offsets: 0,
        }];
        let mut groups = Vec::with_capacity(order.len().div_ceil(LANES));
        for chunk in order.chunks(LANES) {
            let mut group = Group {
                depth: 0,
                roots: [0; LANES],
                trees: [roots.len(); LANES],
            };
            for (lane, &tree) in chunk.iter().enumerate() {
                group.roots[lane] = steps.len();
                group.trees[lane] = tree;
                group.depth = group.depth.max(depths[tree]);
                push_preorder(nodes, leaf_values, roots[tree], &mut steps)?;
            }
            groups.push(group);
        }
        let mut tree_roots = vec![0; roots.len()];
        for group in &groups {
            for (&tree, &root) in group.trees.iter().zip(&group.roots) {
                if tree < roots.len() {
                    tree_roots[tree] = root;
                }
            }
        }
        Some(Lockstep {
            steps,
            groups,
            tree_roots,
            tree_depths: depths.to_vec(),
            num_trees: roots.len(),
        })
    }

    /// The raw score of a row (the caller checks its arity).
    pub(super) fn raw_score(&self, row: &[f64]) -> f64 {
        LEAF_VALUES.with_borrow_mut(|leaf| {
            // One slot per tree plus one for the padding lanes; every slot is written below.
            leaf.resize(self.num_trees + 1, 0.0);
            self.walk(row, leaf)
        })
    }

    /// Writes each tree's leaf value for `row` into `leaf[tree]` and sums them in model order.
    fn walk(&self, row: &[f64], leaf: &mut [f64]) -> f64 {
        for group in &self.groups {
            let mut at = group.roots;
            for _ in 0..group.depth {
                let mut moved = 0;
                for pos in &mut at {
                    let step = &self.steps[*pos];
                    let offset =
                        child_offset(step, goes_right(step, row[usize::from(step.feature)]));
                    *pos += offset;
                    moved |= offset;
                }
                if moved == 0 {
                    break;
                }
            }
            for (pos, &tree) in at.iter().zip(&group.trees) {
                leaf[tree] = self.steps[*pos].value;
            }
        }
        leaf[..self.num_trees].iter().sum()
    }

    /// Adds each tree's leaf value to `out[r]` for the rows of a row-major `block` (`width`
    /// values each), tree by tree in model order — the same sums as [`Self::raw_score`] —
    /// walking [`LANES`] rows through a tree in lockstep, so the tree stays in cache and the
    /// rows' load chains overlap.
    pub(super) fn add_raw_scores(&self, block: &[f64], width: usize, out: &mut [f64]) {
        for (&root, &depth) in self.tree_roots.iter().zip(&self.tree_depths) {
            let mut rows = block.chunks_exact(width * LANES);
            let mut outs = out.chunks_exact_mut(LANES);
            for (rows, outs) in (&mut rows).zip(&mut outs) {
                let mut at = [root; LANES];
                for _ in 0..depth {
                    let mut moved = 0;
                    for (lane, pos) in at.iter_mut().enumerate() {
                        let step = &self.steps[*pos];
                        let value = rows[lane * width + usize::from(step.feature)];
                        let offset = child_offset(step, goes_right(step, value));
                        *pos += offset;
                        moved |= offset;
                    }
                    if moved == 0 {
                        break;
                    }
                }
                for (score, pos) in outs.iter_mut().zip(at) {
                    *score += self.steps[pos].value;
                }
            }
            // The last rows, fewer than a lane group, one at a time.
            for (row, score) in rows
                .remainder()
                .chunks_exact(width)
                .zip(outs.into_remainder())
            {
                let mut pos = root;
                for _ in 0..depth {
                    let step = &self.steps[pos];
                    pos += child_offset(step, goes_right(step, row[usize::from(step.feature)]));
                }
                *score += self.steps[pos].value;
            }
        }
    }
}

/// The depth of the leaf a training row reached, averaged over the training rows (the
/// leaves' covers); 0 for a single-leaf tree.
fn mean_leaf_depth(nodes: &[Node], leaf_counts: &[f64], root: i32) -> f64 {
    let (mut weighted, mut total) = (0.0, 0.0);
    let mut stack = vec![(root, 0.0)];
    while let Some((node, depth)) = stack.pop() {
        if node < 0 {
            let count = leaf_counts[!node as usize];
            weighted += count * depth;
            total += count;
        } else {
            let n = &nodes[node as usize];
            stack.push((n.left, depth + 1.0));
            stack.push((n.right, depth + 1.0));
        }
    }
    if total > 0.0 { weighted / total } else { 0.0 }
}

/// Appends the subtree at `node` (a node index, or `!leaf`) in preorder; `None` if a child
/// offset does not fit in 16 bits.
fn push_preorder(
    nodes: &[Node],
    leaf_values: &[f64],
    node: i32,
    steps: &mut Vec<Step>,
) -> Option<()> {
    if node < 0 {
        steps.push(Step {
            value: leaf_values[!node as usize],
            feature: 0,
            nan_right: false,
            offsets: 0,
        });
        return Some(());
    }
    let n = &nodes[node as usize];
    let nan_right = match n.missing_type() {
        MissingType::NaN => n.decision & DEFAULT_LEFT_MASK == 0,
        // Missing type None reads NaN as 0.0; Zero never reaches here (not SIMPLE).
        _ => 0.0 > n.threshold,
    };
    let at = steps.len();
    steps.push(Step {
        value: n.threshold,
        feature: u16::try_from(n.feature).ok()?,
        nan_right,
        offsets: 1,
    });
    push_preorder(nodes, leaf_values, n.left, steps)?;
    steps[at].offsets |= u32::from(u16::try_from(steps.len() - at).ok()?) << 16;
    push_preorder(nodes, leaf_values, n.right, steps)
}
