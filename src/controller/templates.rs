//! The analysis templates a Rollout references, looked up in the template caches and checked
//! before any run is created: a missing template, a condition that does not compile, a bad
//! interval or an argument nobody supplies makes the Rollout `InvalidSpec` (through the
//! engine's validation) instead of failing at the first measurement. Reads the caches only.

use super::context::Stores;
use crate::crd::{AnalysisTemplateRef, AnalysisTemplateSpec, Rollout, RolloutAnalysis};
use crate::engine::TemplateKey;
use crate::engine::measure::validate_metric;
use kube::runtime::reflector::ObjectRef;
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

/// Every analysis a Rollout's strategy configures: steps, background, blue/green pre- and
/// post-promotion.
pub fn analyses(rollout: &Rollout) -> Vec<&RolloutAnalysis> {
    let strategy = &rollout.spec.strategy;
    let mut out = Vec::new();
    if let Some(canary) = &strategy.canary {
        out.extend(canary.steps.iter().filter_map(|s| s.analysis.as_ref()));
        out.extend(canary.analysis.as_ref().map(|b| &b.analysis));
    }
    if let Some(bg) = &strategy.blue_green {
        out.extend(bg.pre_promotion_analysis.as_ref());
        out.extend(bg.post_promotion_analysis.as_ref());
    }
    out
}

/// The names of the namespaced AnalysisTemplates a Rollout references (for the index that maps
/// a template's change back to its Rollouts).
pub fn template_names(rollout: &Rollout) -> Vec<String> {
    let mut names: Vec<String> = analyses(rollout)
        .into_iter()
        .flat_map(|a| a.templates.iter())
        .filter(|t| !t.cluster_scope)
        .map(|t| t.template_name.clone())
        .collect();
    names.sort();
    names.dedup();
    names
}

/// A referenced template's spec from the caches, `None` when it does not exist.
pub fn lookup(
    stores: &Stores,
    namespace: &str,
    t: &AnalysisTemplateRef,
) -> Option<AnalysisTemplateSpec> {
    if t.cluster_scope {
        let key = ObjectRef::new(&t.template_name);
        stores
            .cluster_analysis_templates
            .get(&key)
            .map(|c| c.spec.template.clone())
    } else {
        let key = ObjectRef::new(&t.template_name).within(namespace);
        stores.analysis_templates.get(&key).map(|t| t.spec.clone())
    }
}

/// Each referenced template: `None` when missing, else its problems. Empty until the template
/// caches have synced, so a controller starting up never calls a template missing.
pub fn observe(
    rollout: &Rollout,
    namespace: &str,
    stores: &Stores,
) -> BTreeMap<TemplateKey, Option<Vec<String>>> {
    let mut out = BTreeMap::new();
    if !stores.templates_synced.load(Ordering::SeqCst) {
        return out;
    }
    for analysis in analyses(rollout) {
        // A run's metrics are known by name: two templates of one analysis must not share one.
        let mut seen: BTreeMap<String, String> = BTreeMap::new();
        for t in &analysis.templates {
            let found = lookup(stores, namespace, t).map(|spec| {
                let mut found = problems(&spec, analysis);
                for metric in &spec.metrics {
                    match seen.get(&metric.name) {
                        Some(other) => found.push(format!(
                            "metric {:?} is also defined by template {other:?} of the same analysis",
                            metric.name
                        )),
                        None => {
                            seen.insert(metric.name.clone(), t.template_name.clone());
                        }
                    }
                }
                found
            });
            out.insert((t.cluster_scope, t.template_name.clone()), found);
        }
    }
    out
}

/// What is wrong with a template as `analysis` uses it.
fn problems(spec: &AnalysisTemplateSpec, analysis: &RolloutAnalysis) -> Vec<String> {
    let mut out: Vec<String> = spec
        .metrics
        .iter()
        .filter_map(|m| validate_metric(m).err().map(|e| e.to_string()))
        .collect();
    if let Err(e) =
        crate::engine::measure::judge::validate_run(&spec.metrics, spec.judgement.as_ref())
    {
        out.push(e.to_string());
    }
    for arg in &spec.args {
        let supplied = analysis.args.iter().any(|a| a.name == arg.name);
        if arg.value.is_none() && arg.value_from.is_none() && !supplied {
            out.push(format!(
                "argument {:?} has no value and the Rollout does not supply it",
                arg.name
            ));
        }
    }
    out
}
