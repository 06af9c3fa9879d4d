//! The pod template: where it comes from (`spec.template` or a `workloadRef` Deployment), the
//! selector that must match it, and the fields a real API server would reject in the
//! ReplicaSet built from it (quantities, names, label keys and values, ports), so a bad
//! template is an `InvalidSpec` before any ReplicaSet is created rather than a 422 on every
//! reconcile.

use super::syntax;
use super::{InvalidSpec, invalid};
use crate::crd::{Rollout, WorkloadScaleDown};
use crate::engine::model::Observed;
use k8s_openapi::api::core::v1::{Container, PodSpec, PodTemplateSpec, ResourceRequirements};
use std::collections::{BTreeMap, BTreeSet};

/// The pod template and, with a `workloadRef`, its scale-down mode.
///
/// # Errors
/// Neither or both of `template` and `workloadRef`, a kind other than Deployment, or a missing
/// Deployment.
pub(super) fn source(
    rollout: &Rollout,
    observed: &Observed,
) -> Result<(PodTemplateSpec, Option<WorkloadScaleDown>), InvalidSpec> {
    match (&rollout.spec.template, &rollout.spec.workload_ref) {
        (Some(t), None) => Ok((t.clone(), None)),
        (None, Some(w)) if w.kind != "Deployment" => Err(invalid(
            "spec.workloadRef.kind",
            format!("{:?} is not supported; use Deployment", w.kind),
        )),
        (None, Some(w)) => match &observed.workload {
            Some(workload) => Ok((
                workload.template.clone(),
                Some(w.scale_down.unwrap_or_default()),
            )),
            None => Err(invalid(
                "spec.workloadRef.name",
                format!("Deployment {:?} not found", w.name),
            )),
        },
        (Some(_), Some(_)) | (None, None) => Err(invalid(
            "spec.template",
            "exactly one of spec.template and spec.workloadRef must be set",
        )),
    }
}

/// Checks `spec.selector` against the template and returns it in string form.
///
/// # Errors
/// A missing or empty selector, or one the template's labels do not match.
pub(super) fn selector(
    rollout: &Rollout,
    template: &PodTemplateSpec,
) -> Result<String, InvalidSpec> {
    let Some(selector) = &rollout.spec.selector else {
        return Err(invalid("spec.selector", "is required"));
    };
    let match_labels = selector.match_labels.clone().unwrap_or_default();
    if match_labels.is_empty()
        && selector
            .match_expressions
            .as_ref()
            .is_none_or(Vec::is_empty)
    {
        return Err(invalid(
            "spec.selector",
            "an empty selector would select every pod",
        ));
    }
    let template_labels = labels(template);
    if let Some((k, v)) = match_labels
        .iter()
        .find(|(k, v)| template_labels.get(*k) != Some(*v))
    {
        return Err(invalid(
            "spec.selector.matchLabels",
            format!("{k}={v} does not match the template's labels"),
        ));
    }
    Ok(match_labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(","))
}

fn labels(template: &PodTemplateSpec) -> BTreeMap<String, String> {
    template
        .metadata
        .as_ref()
        .and_then(|m| m.labels.clone())
        .unwrap_or_default()
}

/// Checks the fields of `spec.template` a real API server validates in the ReplicaSet. A
/// `workloadRef` template was already validated by the API server in its Deployment.
///
/// # Errors
/// The first field the API server would reject, with its message.
pub(super) fn check(rollout: &Rollout) -> Result<(), InvalidSpec> {
    let Some(template) = &rollout.spec.template else {
        return Ok(());
    };
    const F: &str = "spec.template";
    for (k, v) in &labels(template) {
        let field = format!("{F}.metadata.labels");
        syntax::qualified_name(k).map_err(|e| invalid(&field, format!("{k:?}: {e}")))?;
        syntax::label_value(v).map_err(|e| invalid(&field, format!("{v:?}: {e}")))?;
    }
    let Some(spec) = &template.spec else {
        return Err(invalid(format!("{F}.spec"), "is required"));
    };
    check_pod_spec(spec, &format!("{F}.spec"))
}

fn check_pod_spec(spec: &PodSpec, f: &str) -> Result<(), InvalidSpec> {
    if spec.containers.is_empty() {
        return Err(invalid(
            format!("{f}.containers"),
            "at least one container is required",
        ));
    }
    let mut names = BTreeSet::new();
    let init = spec.init_containers.iter().flatten();
    for (list, c, i) in init
        .enumerate()
        .map(|(i, c)| ("initContainers", c, i))
        .chain(
            spec.containers
                .iter()
                .enumerate()
                .map(|(i, c)| ("containers", c, i)),
        )
    {
        let field = format!("{f}.{list}[{i}]");
        check_container(c, &field)?;
        if !names.insert(c.name.as_str()) {
            return Err(invalid(
                format!("{field}.name"),
                format!("{:?}: Duplicate value", c.name),
            ));
        }
    }
    for (i, v) in spec.volumes.iter().flatten().enumerate() {
        if let Some(limit) = v.empty_dir.as_ref().and_then(|e| e.size_limit.as_ref()) {
            check_quantity(&limit.0, &format!("{f}.volumes[{i}].emptyDir.sizeLimit"))?;
        }
    }
    Ok(())
}

fn check_container(c: &Container, field: &str) -> Result<(), InvalidSpec> {
    syntax::dns1123_label(&c.name)
        .map_err(|e| invalid(format!("{field}.name"), format!("{:?}: {e}", c.name)))?;
    if let Some(r) = &c.resources {
        check_resources(r, &format!("{field}.resources"))?;
    }
    for (j, p) in c.ports.iter().flatten().enumerate() {
        let pf = format!("{field}.ports[{j}]");
        if !(1..=65535).contains(&p.container_port) {
            return Err(invalid(
                format!("{pf}.containerPort"),
                format!(
                    "{}: must be between 1 and 65535, inclusive",
                    p.container_port
                ),
            ));
        }
        if let Some(h) = p.host_port
            && !(1..=65535).contains(&h)
        {
            return Err(invalid(
                format!("{pf}.hostPort"),
                format!("{h}: must be between 1 and 65535, inclusive"),
            ));
        }
        if let Some(name) = &p.name {
            syntax::port_name(name)
                .map_err(|e| invalid(format!("{pf}.name"), format!("{name:?}: {e}")))?;
        }
    }
    Ok(())
}

fn check_resources(r: &ResourceRequirements, field: &str) -> Result<(), InvalidSpec> {
    for (which, list) in [("limits", &r.limits), ("requests", &r.requests)] {
        for (name, q) in list.iter().flatten() {
            check_quantity(&q.0, &format!("{field}.{which}[{name}]"))?;
        }
    }
    Ok(())
}

fn check_quantity(q: &str, field: &str) -> Result<(), InvalidSpec> {
    match syntax::quantity(q) {
        Ok(false) => Ok(()),
        Ok(true) => Err(invalid(
            field,
            format!("{q:?}: must be greater than or equal to 0"),
        )),
        Err(e) => Err(invalid(field, format!("{q:?}: {e}"))),
    }
}
