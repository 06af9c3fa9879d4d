//! Schema helpers for the CRD generator: free-form fields, and trimming the descriptions of
//! embedded Kubernetes types so the Rollout CRD stays small enough for client-side
//! `kubectl apply` (its last-applied annotation is limited to 256 KiB).

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, JSONSchemaProps,
};
use schemars::{Schema, SchemaGenerator, json_schema};

/// A JSON object whose fields the API server keeps as they are.
pub fn free_form_object(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": true,
    })
}

/// Drops descriptions below `spec.template` of every version's schema: they are the
/// PodTemplateSpec's upstream documentation, which `kubectl explain pod` already shows, and
/// they make up most of the CRD's size.
pub fn trim_embedded_descriptions(crd: &mut CustomResourceDefinition) {
    for version in &mut crd.spec.versions {
        let template = version
            .schema
            .as_mut()
            .and_then(|s| s.open_api_v3_schema.as_mut())
            .and_then(|root| root.properties.as_mut())
            .and_then(|props| props.get_mut("spec"))
            .and_then(|spec| spec.properties.as_mut())
            .and_then(|props| props.get_mut("template"));
        if let Some(template) = template {
            let own = template.description.take();
            strip(template);
            template.description = own;
        }
    }
}

fn strip(schema: &mut JSONSchemaProps) {
    schema.description = None;
    for child in schema.properties.iter_mut().flat_map(|p| p.values_mut()) {
        strip(child);
    }
    if let Some(k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::JSONSchemaPropsOrArray::Schema(items)) =
        schema.items.as_mut()
    {
        strip(items);
    }
    if let Some(k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::JSONSchemaPropsOrBool::Schema(extra)) =
        schema.additional_properties.as_mut()
    {
        strip(extra);
    }
    for child in schema
        .all_of
        .iter_mut()
        .chain(schema.any_of.iter_mut())
        .chain(schema.one_of.iter_mut())
        .flatten()
    {
        strip(child);
    }
}
