//! Replica maths (reference §2.3): the basic canary's weight-by-replica-count approximation
//! inside the maxSurge/maxUnavailable budgets, the traffic-routed canary's
//! `ceil(weight × replicas / maxWeight)` with dynamicStableScale and minPodsPerReplicaSet, and
//! the availability gate every plan passes through. Pure integer arithmetic.

use super::validate::{CanaryScale, Step};
use crate::crd::{ProgressThresholdType, ReplicaProgressThreshold};
use std::collections::BTreeMap;

/// `ceil(a × b / c)` in i64, for non-negative inputs and c > 0.
pub fn ceil_div(a: i64, b: i64, c: i64) -> i64 {
    if c <= 0 {
        return 0;
    }
    (a * b + c - 1) / c
}

fn to_i32(v: i64) -> i32 {
    i32::try_from(v.clamp(0, i64::from(i32::MAX))).unwrap_or(i32::MAX)
}

/// The last `setWeight` at or before `index` and the one before it (0 when none).
pub fn weights_around(steps: &[Step], index: usize) -> (i32, i32) {
    let mut current = 0;
    let mut previous = 0;
    for step in steps.iter().take(index.saturating_add(1)) {
        match step {
            Step::SetWeight(w) => {
                previous = current;
                current = *w;
            }
            Step::Pause(_)
            | Step::SetCanaryScale(_)
            | Step::Analysis(_)
            | Step::SetHeaderRoute(_)
            | Step::SetMirrorRoute(_) => {}
        }
    }
    (current, previous)
}

/// The `setCanaryScale` in force at `index`: it sticks until a `matchTrafficWeight`.
pub fn canary_scale_at(steps: &[Step], index: usize) -> Option<CanaryScale> {
    let mut scale = None;
    for step in steps.iter().take(index.saturating_add(1)) {
        match step {
            Step::SetCanaryScale(CanaryScale::MatchTrafficWeight) => scale = None,
            Step::SetCanaryScale(s) => scale = Some(*s),
            Step::SetWeight(_)
            | Step::Pause(_)
            | Step::Analysis(_)
            | Step::SetHeaderRoute(_)
            | Step::SetMirrorRoute(_) => {}
        }
    }
    scale
}

/// Basic canary: the canary and stable counts that best approximate `weight` out of
/// `max_weight` with `replicas` pods. The nearest integer, ties rounded up; when
/// 0 < weight < max and replicas > 1 each side keeps at least one pod, using one surge pod
/// when the surge allows it instead of taking it from the other side.
pub fn basic_counts(replicas: i32, weight: i32, max_weight: i32, max_surge: i32) -> (i32, i32) {
    let d = i64::from(replicas.max(0));
    let max = i64::from(max_weight.max(1));
    let w = i64::from(weight.clamp(0, max_weight.max(1)));
    // Nearest integer, ties up: floor((2·d·w + max) / (2·max)).
    let mut canary = (2 * d * w + max) / (2 * max);
    let mut stable = d - canary;
    if w > 0 && w < max && d > 1 {
        if canary == 0 {
            canary = 1;
            if max_surge < 1 {
                stable = d - 1;
            }
        } else if stable == 0 {
            stable = 1;
            if max_surge < 1 {
                canary = d - 1;
            }
        }
    }
    (to_i32(canary), to_i32(stable))
}

/// Traffic-routed canary: the canary count for a weight or a `setCanaryScale`, raised to
/// `min_pods` when non-zero and capped at `replicas` for that raise.
pub fn traffic_canary_count(
    replicas: i32,
    weight: i32,
    max_weight: i32,
    scale: Option<CanaryScale>,
    min_pods: i32,
) -> i32 {
    let d = i64::from(replicas.max(0));
    let count = match scale {
        Some(CanaryScale::Replicas(n)) => i64::from(n.max(0)),
        Some(CanaryScale::Weight(p)) => ceil_div(d, i64::from(p.clamp(0, 100)), 100),
        Some(CanaryScale::MatchTrafficWeight) | None => {
            ceil_div(d, i64::from(weight.max(0)), i64::from(max_weight.max(1)))
        }
    };
    let count = to_i32(count);
    if count > 0 && min_pods > count {
        min_pods.min(replicas.max(count))
    } else {
        count
    }
}

/// Traffic-routed stable count under dynamicStableScale: enough for the traffic it will
/// carry and for the traffic it carries now (the previous stable weight), so it lags a
/// weight change by one reconcile instead of flapping.
pub fn dynamic_stable_count(
    replicas: i32,
    weight: i32,
    max_weight: i32,
    current_stable_weight: i32,
) -> i32 {
    let d = i64::from(replicas.max(0));
    let max = i64::from(max_weight.max(1));
    let for_new = ceil_div(d, max - i64::from(weight.clamp(0, max_weight)), max);
    let for_now = ceil_div(
        d,
        i64::from(current_stable_weight.clamp(0, max_weight)),
        max,
    );
    to_i32(for_new.max(for_now))
}

/// How many of `desired` canary pods must be available for a step to count as reached.
pub fn progress_threshold(threshold: Option<&ReplicaProgressThreshold>, desired: i32) -> i32 {
    match threshold {
        None => desired,
        Some(t) => match t.kind {
            ProgressThresholdType::Percent => to_i32(ceil_div(
                i64::from(desired),
                i64::from(t.value.clamp(0, 100)),
                100,
            )),
            ProgressThresholdType::Pods => t.value.clamp(0, desired.max(0)),
        },
    }
}

/// One ReplicaSet's counts as the budget maths sees them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Counts {
    /// Its name.
    pub name: String,
    /// `spec.replicas` (0 for one about to be created).
    pub spec: i32,
    /// Available pods.
    pub available: i32,
    /// Its revision, to drain the oldest first.
    pub revision: i64,
}

/// Basic canary within budgets: first the scale-downs (old ReplicaSets to 0, canary and
/// stable down to their targets) through `availability_gate`, then the scale-ups (stable
/// first, then canary) inside `replicas + maxSurge − Σ(spec after the scale-downs)`. Taking
/// the downs first makes the plan a fixpoint: deciding again on its result asks for nothing.
#[allow(clippy::too_many_arguments)]
pub fn basic_plan(
    replicas: i32,
    max_surge: i32,
    max_unavailable: i32,
    canary: &Counts,
    stable: Option<&Counts>,
    others: &[Counts],
    canary_target: i32,
    stable_target: i32,
) -> BTreeMap<String, i32> {
    let mut targets = BTreeMap::new();
    let mut order: Vec<Counts> = others.to_vec();
    for o in others {
        targets.insert(o.name.clone(), 0);
    }
    order.push(canary.clone());
    targets.insert(canary.name.clone(), canary.spec.min(canary_target));
    if let Some(s) = stable {
        order.push(s.clone());
        targets.insert(s.name.clone(), s.spec.min(stable_target));
    }
    availability_gate(replicas, max_unavailable, &order, &mut targets);
    let total: i64 = targets.values().map(|t| i64::from(*t)).sum();
    let mut up = i64::from(replicas) + i64::from(max_surge) - total;
    if let Some(s) = stable
        && let Some(t) = targets.get_mut(&s.name)
        && *t < stable_target
        && up > 0
    {
        let add = up.min(i64::from(stable_target - *t));
        *t = to_i32(i64::from(*t) + add);
        up -= add;
    }
    if let Some(t) = targets.get_mut(&canary.name)
        && *t < canary_target
        && up > 0
    {
        let add = up.min(i64::from(canary_target - *t));
        *t = to_i32(i64::from(*t) + add);
    }
    targets
}

/// Limits every scale-down in `targets` so that the pods that stay available do not drop
/// below `replicas − max_unavailable` (or below what is available now, if that is less).
/// `order` lists ReplicaSets in the order scale-downs should take the budget.
pub fn availability_gate(
    replicas: i32,
    max_unavailable: i32,
    order: &[Counts],
    targets: &mut BTreeMap<String, i32>,
) {
    let total_available: i64 = order.iter().map(|c| i64::from(c.available)).sum();
    let floor = i64::from(replicas) - i64::from(max_unavailable);
    let mut budget = (total_available - floor).max(0);
    for c in order {
        let Some(target) = targets.get_mut(&c.name) else {
            continue;
        };
        if *target >= c.spec || *target >= c.available {
            continue;
        }
        let cost = i64::from(c.available - *target);
        if cost > budget {
            *target = to_i32(i64::from(c.available) - budget).min(c.spec);
            budget = 0;
        } else {
            budget -= cost;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_counts_round_to_nearest_and_keep_one_each() {
        // (replicas, weight, surge) -> (canary, stable)
        let cases = [
            ((10, 20, 3), (2, 8)),
            ((10, 25, 3), (3, 7)), // 2.5 rounds up
            ((4, 10, 1), (1, 4)),  // at least one canary, surge pod used
            ((4, 10, 0), (1, 3)),  // no surge: taken from stable
            ((4, 95, 1), (4, 1)),
            ((1, 50, 1), (1, 0)), // one replica: ties up, no minimum
            ((5, 0, 2), (0, 5)),
            ((5, 100, 2), (5, 0)),
        ];
        for ((d, w, s), want) in cases {
            assert_eq!(
                basic_counts(d, w, 100, s),
                want,
                "replicas={d} weight={w} surge={s}"
            );
        }
    }

    #[test]
    fn traffic_counts_use_ceil_and_min_pods() {
        assert_eq!(traffic_canary_count(10, 15, 100, None, 0), 2);
        assert_eq!(traffic_canary_count(10, 0, 100, None, 3), 0);
        assert_eq!(traffic_canary_count(10, 5, 100, None, 3), 3);
        assert_eq!(traffic_canary_count(2, 5, 100, None, 3), 2);
        assert_eq!(
            traffic_canary_count(10, 5, 100, Some(CanaryScale::Replicas(4)), 0),
            4
        );
        assert_eq!(
            traffic_canary_count(10, 5, 100, Some(CanaryScale::Weight(33)), 0),
            4
        );
        assert_eq!(traffic_canary_count(10, 50, 1000, None, 0), 1);
        assert_eq!(dynamic_stable_count(10, 30, 100, 100), 10);
        assert_eq!(dynamic_stable_count(10, 30, 100, 70), 7);
    }

    #[test]
    fn gate_keeps_availability_floor() {
        let order = [
            Counts {
                name: "old".into(),
                spec: 4,
                available: 4,
                revision: 1,
            },
            Counts {
                name: "new".into(),
                spec: 2,
                available: 0,
                revision: 2,
            },
        ];
        let mut targets = BTreeMap::from([("old".to_string(), 0), ("new".to_string(), 2)]);
        availability_gate(4, 1, &order, &mut targets);
        assert_eq!(targets["old"], 3, "{targets:?}");
    }
}
