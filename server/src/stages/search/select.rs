//! What the search does next, and which candidates are not worth running.
//!
//! The rule (deterministic, so a resumed search makes the same choices):
//! 1. a branch request (`aisci runs branch`) is served first, even past `max_nodes`:
//!    improve that node (debug it when it failed);
//! 2. stop at `max_nodes` variants;
//! 3. draft until `drafts` drafts exist;
//! 4. debug a failed run that has no child yet, while its line has had fewer than
//!    `max_debug` fixes in a row (oldest first);
//! 5. improve a working node: the best by score, except that every `explore_every`-th
//!    improvement goes to the working node with the fewest children (ties: the better);
//! 6. with nothing working yet: wait for a run in flight, else draft again.

use similar::{ChangeTag, TextDiff};

use crate::config::TreeSettings;

use super::score::better;
use super::tree::{NodeKind, NodeState, Tree};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Draft,
    Debug(u32),
    Improve(u32),
    /// Nothing to do until a run in flight ends.
    Wait,
    Stop,
}

pub fn next(tree: &Tree, s: &TreeSettings, in_flight: usize, branch: Option<u32>) -> Action {
    if let Some(node) = branch.and_then(|id| tree.node(id)) {
        if node.state == NodeState::Failed && node.feedback.is_some() {
            return Action::Debug(node.id);
        }
        if node.state == NodeState::Done {
            return Action::Improve(node.id);
        }
    }
    if tree.variants() >= s.max_nodes as usize {
        return Action::Stop;
    }
    let drafts = tree.nodes.iter().filter(|n| n.kind == NodeKind::Draft).count();
    if drafts < s.drafts as usize {
        return Action::Draft;
    }
    if let Some(n) = tree.nodes.iter().find(|n| {
        n.state == NodeState::Failed
            && n.kind != NodeKind::Baseline
            && n.feedback.is_some()
            && n.debug_depth < s.max_debug
            && tree.children(n.id).next().is_none()
    }) {
        return Action::Debug(n.id);
    }
    let Some(metric) = &tree.metric else {
        return Action::Draft;
    };
    let working: Vec<_> = tree
        .nodes
        .iter()
        .filter(|n| n.kind != NodeKind::Baseline && n.state == NodeState::Done)
        .filter_map(|n| n.score.map(|sc| (n, sc)))
        .collect();
    if working.is_empty() {
        return if in_flight > 0 {
            Action::Wait
        } else {
            Action::Draft
        };
    }
    let dir = metric.direction;
    let explore = s.explore_every > 0 && (tree.improvements + 1) % s.explore_every == 0;
    let pick = if explore {
        working.iter().min_by(|(a, sa), (b, sb)| {
            let (ca, cb) = (tree.children(a.id).count(), tree.children(b.id).count());
            ca.cmp(&cb).then_with(|| order(dir, *sa, *sb))
        })
    } else {
        working.iter().min_by(|(_, sa), (_, sb)| order(dir, *sa, *sb))
    };
    pick.map_or(Action::Draft, |(n, _)| Action::Improve(n.id))
}

/// Better first; equal scores keep their order (the older node first).
fn order(dir: crate::config::Direction, a: f64, b: f64) -> std::cmp::Ordering {
    if better(dir, a, b) {
        std::cmp::Ordering::Less
    } else if better(dir, b, a) {
        std::cmp::Ordering::Greater
    } else {
        std::cmp::Ordering::Equal
    }
}

/// The best node at full size, if any has a score.
pub fn best(tree: &Tree) -> Option<u32> {
    let dir = tree.metric.as_ref()?.direction;
    tree.nodes
        .iter()
        .filter(|n| n.state == NodeState::Done)
        .filter_map(|n| n.score.map(|s| (n.id, s)))
        .min_by(|(_, a), (_, b)| order(dir, *a, *b))
        .map(|(id, _)| id)
}

/// A code change, normalised: the lines added and removed against the baseline, with
/// comments, blank lines and runs of spaces dropped, so that two candidates that differ
/// only in layout or comments compare equal.
pub fn change_signature(baseline: &str, code: &str) -> String {
    let (a, b) = (normalise(baseline), normalise(code));
    let diff = TextDiff::from_lines(&a, &b);
    let mut out = String::new();
    for c in diff.iter_all_changes() {
        let sign = match c.tag() {
            ChangeTag::Equal => continue,
            ChangeTag::Delete => '-',
            ChangeTag::Insert => '+',
        };
        out.push(sign);
        out.push_str(c.value().trim_end_matches('\n'));
        out.push('\n');
    }
    out
}

fn normalise(code: &str) -> String {
    let mut out = String::new();
    for line in code.lines() {
        let line = strip_comment(line);
        let words: Vec<&str> = line.split_whitespace().collect();
        if words.is_empty() {
            continue;
        }
        out.push_str(&words.join(" "));
        out.push('\n');
    }
    out
}

/// The line without a `#` comment that is outside quotes.
fn strip_comment(line: &str) -> &str {
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for (i, c) in line.char_indices() {
        match quote {
            Some(q) => {
                if escaped {
                    escaped = false;
                } else if c == '\\' {
                    escaped = true;
                } else if c == q {
                    quote = None;
                }
            }
            None => match c {
                '\'' | '"' => quote = Some(c),
                '#' => return &line[..i],
                _ => {}
            },
        }
    }
    line
}

/// How alike two change signatures are (0 to 1; two empty changes are identical).
pub fn similarity(a: &str, b: &str) -> f64 {
    if a.is_empty() && b.is_empty() {
        return 1.0;
    }
    TextDiff::from_lines(a, b).ratio() as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Direction;
    use crate::stages::search::tree::{Metric, MetricSource, Node};

    fn node(id: u32, parent: Option<u32>, kind: NodeKind, state: NodeState, score: Option<f64>) -> Node {
        Node {
            id,
            parent,
            kind,
            state,
            plan: String::new(),
            smoke_score: None,
            score,
            error: None,
            feedback: (state == NodeState::Failed).then(|| "Traceback".to_string()),
            duplicate_of: None,
            similarity: None,
            cost_usd: 0.0,
            debug_depth: u32::from(kind == NodeKind::Debug),
            means: None,
            created: String::new(),
            ended: None,
        }
    }

    fn tree(nodes: Vec<Node>) -> Tree {
        let mut t = Tree::new();
        t.metric = Some(Metric {
            name: "loss".into(),
            direction: Direction::Min,
            source: MetricSource::Settings,
            reason: None,
        });
        t.nodes = nodes;
        t
    }

    #[test]
    fn drafts_then_debug_then_best_first_with_exploration() {
        let s = TreeSettings {
            drafts: 2,
            max_nodes: 10,
            max_debug: 1,
            explore_every: 3,
            ..TreeSettings::default()
        };
        let base = node(0, None, NodeKind::Baseline, NodeState::Done, Some(1.0));
        let mut t = tree(vec![base.clone()]);
        assert_eq!(next(&t, &s, 0, None), Action::Draft);
        t.nodes
            .push(node(1, Some(0), NodeKind::Draft, NodeState::Failed, None));
        t.nodes
            .push(node(2, Some(0), NodeKind::Draft, NodeState::Done, Some(0.8)));
        assert_eq!(next(&t, &s, 0, None), Action::Debug(1));
        let mut fix = node(3, Some(1), NodeKind::Debug, NodeState::Failed, None);
        fix.debug_depth = 1;
        t.nodes.push(fix);
        // The fix failed too, but its line used its one fix: improve the best instead.
        assert_eq!(next(&t, &s, 0, None), Action::Improve(2));
        t.nodes
            .push(node(4, Some(2), NodeKind::Improve, NodeState::Done, Some(0.7)));
        t.improvements = 1;
        assert_eq!(next(&t, &s, 0, None), Action::Improve(4));
        t.improvements = 2;
        // The third improvement explores: node 4 has no child, node 2 has one.
        t.nodes
            .push(node(5, Some(4), NodeKind::Improve, NodeState::Done, Some(0.75)));
        assert_eq!(next(&t, &s, 0, None), Action::Improve(5));
        // A branch request wins.
        assert_eq!(next(&t, &s, 0, Some(2)), Action::Improve(2));
        let full = TreeSettings {
            max_nodes: 5,
            ..s.clone()
        };
        assert_eq!(next(&t, &full, 0, None), Action::Stop);
        // A branch goes one variant past the cap.
        assert_eq!(next(&t, &full, 0, Some(5)), Action::Improve(5));
        assert_eq!(best(&t), Some(4));
    }

    #[test]
    fn nothing_working_waits_for_runs_in_flight() {
        let s = TreeSettings {
            drafts: 1,
            ..TreeSettings::default()
        };
        let t = tree(vec![
            node(0, None, NodeKind::Baseline, NodeState::Done, Some(1.0)),
            node(1, Some(0), NodeKind::Draft, NodeState::Running, None),
        ]);
        assert_eq!(next(&t, &s, 1, None), Action::Wait);
        assert_eq!(next(&t, &s, 0, None), Action::Draft);
    }

    #[test]
    fn layout_and_comments_do_not_make_a_change_new() {
        let base = "lr = 0.1\nsteps = 10\n";
        let a = change_signature(base, "lr = 0.01  # smaller\nsteps = 10\n");
        let b = change_signature(base, "lr =   0.01\n\nsteps = 10\n");
        let c = change_signature(base, "lr = 0.1\nsteps = 100\n");
        assert_eq!(similarity(&a, &b), 1.0);
        assert!(similarity(&a, &c) < 0.6, "{}", similarity(&a, &c));
        assert_eq!(change_signature(base, "lr = 0.1 # same\nsteps = 10\n"), "");
        assert_eq!(strip_comment("x = '#not' # yes"), "x = '#not' ");
    }
}
