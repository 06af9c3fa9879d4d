//! Analysis references: every template a Rollout's analysis names must exist and be usable,
//! as far as the controller looked them up (`Observed::analysis_templates`).

use super::{InvalidSpec, invalid};
use crate::crd::RolloutAnalysis;
use crate::engine::model::Observed;

/// Checks one analysis block (`field` is its path).
pub(super) fn check(
    observed: &Observed,
    a: &RolloutAnalysis,
    field: &str,
) -> Result<(), InvalidSpec> {
    if a.templates.is_empty() {
        return Err(invalid(
            format!("{field}.templates"),
            "at least one template is required",
        ));
    }
    for (i, t) in a.templates.iter().enumerate() {
        let kind = if t.cluster_scope {
            "ClusterAnalysisTemplate"
        } else {
            "AnalysisTemplate"
        };
        let key = (t.cluster_scope, t.template_name.clone());
        let at = || format!("{field}.templates[{i}].templateName");
        match observed.analysis_templates.get(&key) {
            Some(None) => {
                return Err(invalid(
                    at(),
                    format!("{kind} {:?} not found", t.template_name),
                ));
            }
            Some(Some(problems)) if !problems.is_empty() => {
                return Err(invalid(
                    at(),
                    format!(
                        "{kind} {:?} is invalid: {}",
                        t.template_name,
                        problems.join("; ")
                    ),
                ));
            }
            _ => {}
        }
    }
    Ok(())
}
