//! What `get`, `list` and `status` say about a Rollout, computed from the object alone: its
//! strategy, step, set and actual weight, and its status with an icon. Pure; no I/O.

use super::output::{Colour, paint};
use crate::crd::{Rollout, RolloutPhase};

/// The strategy's name as people say it.
pub fn strategy(rollout: &Rollout) -> &'static str {
    if rollout.spec.strategy.blue_green.is_some() {
        "BlueGreen"
    } else {
        "Canary"
    }
}

/// Whether the desired revision is the stable one.
pub fn promoted(rollout: &Rollout) -> bool {
    rollout
        .status
        .as_ref()
        .is_some_and(|s| s.current_pod_hash.is_some() && s.current_pod_hash == s.stable_rs)
}

/// `i/n` for a canary with steps; `None` otherwise.
pub fn step(rollout: &Rollout) -> Option<String> {
    let steps = rollout.spec.strategy.canary.as_ref()?.steps.len();
    if steps == 0 {
        return None;
    }
    let index = rollout
        .status
        .as_ref()
        .and_then(|s| s.current_step_index)
        .unwrap_or(0);
    Some(format!("{index}/{steps}"))
}

/// The weight the steps so far ask for: the last `setWeight` before the cursor, 100 once
/// promoted, 0 when aborted.
pub fn set_weight(rollout: &Rollout) -> Option<i32> {
    let canary = rollout.spec.strategy.canary.as_ref()?;
    let status = rollout.status.as_ref();
    if promoted(rollout) {
        return Some(100);
    }
    if status.is_some_and(|s| s.abort) {
        return Some(0);
    }
    let index = status.and_then(|s| s.current_step_index).unwrap_or(0);
    let done = usize::try_from(index).unwrap_or(0).min(canary.steps.len());
    Some(
        canary.steps[..done]
            .iter()
            .rev()
            .find_map(|s| s.set_weight)
            .unwrap_or(0),
    )
}

/// The canary weight the routers report (`status.canary.weights`); without traffic routing,
/// the share of updated pods among the available ones.
pub fn actual_weight(rollout: &Rollout) -> Option<i32> {
    rollout.spec.strategy.canary.as_ref()?;
    let status = rollout.status.as_ref()?;
    if promoted(rollout) {
        return Some(100);
    }
    if let Some(weights) = status.canary.as_ref().and_then(|c| c.weights.as_ref()) {
        return Some(weights.canary.weight);
    }
    let available = status.available_replicas.unwrap_or(0);
    let updated = status.updated_replicas.unwrap_or(0).min(available);
    Some(if available == 0 {
        0
    } else {
        updated * 100 / available
    })
}

/// The phase, `Unknown` before the controller has written one.
pub fn phase(rollout: &Rollout) -> String {
    rollout
        .status
        .as_ref()
        .and_then(|s| s.phase)
        .map_or_else(|| "Unknown".to_string(), |p| format!("{p:?}"))
}

/// The status with its icon: `✔ Healthy`, `◌ Progressing`, `॥ Paused`, `✖ Degraded`.
pub fn status_icon(rollout: &Rollout, color: bool) -> String {
    let phase = rollout.status.as_ref().and_then(|s| s.phase);
    let (icon, colour) = match phase {
        Some(RolloutPhase::Healthy) => ("✔", Colour::Green),
        Some(RolloutPhase::Progressing) => ("◌", Colour::Blue),
        Some(RolloutPhase::Paused) => ("॥", Colour::Yellow),
        Some(RolloutPhase::Degraded) => ("✖", Colour::Red),
        None => ("?", Colour::Grey),
    };
    paint(color, colour, &format!("{icon} {}", self::phase(rollout)))
}

/// The status message, or why it is paused.
pub fn message(rollout: &Rollout) -> String {
    let status = rollout.status.as_ref();
    if let Some(m) = status
        .and_then(|s| s.message.clone())
        .filter(|m| !m.is_empty())
    {
        return m;
    }
    if rollout.spec.paused {
        return "manually paused".to_string();
    }
    status
        .and_then(|s| s.pause_conditions.first())
        .map(|c| format!("{:?}", c.reason))
        .unwrap_or_default()
}

/// Whether the controller has seen the latest spec.
pub fn observed(rollout: &Rollout) -> bool {
    rollout
        .status
        .as_ref()
        .is_some_and(|s| s.observed_generation == rollout.metadata.generation)
}
