//! Conformance of the playground API server with the real `kube` client: CRUD, every patch
//! kind, status and scale subresources, validation, selectors and paging, finalizers and
//! garbage collection, fault injection, and a watcher and reflector surviving a forced 410.

// Helpers outside `#[test]` functions unwrap too; clippy.toml only covers test bodies.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod playground_common;
use playground_common::eventually;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Event as CoreEvent};
use k8s_openapi::api::events::v1::Event as EventV1;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams,
};
use kube::runtime::{WatchStreamExt, reflector, watcher};
use serde_json::{Value, json};
use sluice::playground::{Playground, PlaygroundHandle, PlaygroundOptions, SimulationOptions};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

async fn start() -> PlaygroundHandle {
    let options = PlaygroundOptions {
        simulation: SimulationOptions::disabled(),
        // No periodic bookmarks: the forced-410 test relies on watchers not learning newer
        // versions behind its back.
        bookmark_interval: Duration::from_secs(3600),
        ..PlaygroundOptions::default()
    };
    Playground::start(options).await.expect("playground starts")
}

/// Poll `check` until it returns `Some`, or fail with `what` after 10 seconds.
fn api_error(e: kube::Error) -> Box<kube::core::Status> {
    match e {
        kube::Error::Api(s) => s,
        other => panic!("expected an API error, got {other:?}"),
    }
}

const WIDGET_CRD: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
spec:
  group: example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget, shortNames: [wd]}
  versions:
  - name: v1
    served: true
    storage: true
    subresources:
      status: {}
      scale: {specReplicasPath: .spec.replicas, statusReplicasPath: .status.replicas, labelSelectorPath: .status.selector}
    additionalPrinterColumns:
    - {name: Size, type: string, jsonPath: .spec.size}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            required: [size]
            x-kubernetes-validations:
            - {rule: "self.size != 'large' || self.replicas <= 5", message: "large widgets run at most 5 replicas"}
            properties:
              size: {type: string, enum: [small, large]}
              replicas: {type: integer, minimum: 0, default: 1}
              port: {x-kubernetes-int-or-string: true}
              free: {type: object, x-kubernetes-preserve-unknown-fields: true}
              ports:
                type: array
                x-kubernetes-list-type: map
                x-kubernetes-list-map-keys: [name]
                items: {type: object, required: [name], properties: {name: {type: string}, port: {type: integer}}}
          status:
            type: object
            properties:
              replicas: {type: integer}
              selector: {type: string}
              phase: {type: string}
"#;

async fn widgets(pg: &PlaygroundHandle) -> Api<DynamicObject> {
    let crd: CustomResourceDefinition = serde_yaml::from_str(WIDGET_CRD).unwrap();
    let crds: Api<CustomResourceDefinition> = Api::all(pg.client());
    let created = crds.create(&PostParams::default(), &crd).await.unwrap();
    let established = created
        .status
        .unwrap()
        .conditions
        .unwrap()
        .iter()
        .any(|c| c.type_ == "Established" && c.status == "True");
    assert!(established, "the CRD reports Established");
    let ar = ApiResource::from_gvk_with_plural(
        &kube::api::GroupVersionKind::gvk("example.com", "v1", "Widget"),
        "widgets",
    );
    Api::namespaced_with(pg.client(), "default", &ar)
}

fn widget(name: &str, spec: Value) -> DynamicObject {
    serde_json::from_value(json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": name, "labels": {"app": "demo"}}, "spec": spec})).unwrap()
}

fn deployment(name: &str) -> Deployment {
    serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [
                {"name": "app", "image": "app:1", "env": [{"name": "A", "value": "1"}]},
                {"name": "sidecar", "image": "side:1"}
            ]}}}
    }))
    .unwrap()
}

#[tokio::test]
async fn crud_metadata_and_conflicts() {
    let pg = start().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(pg.client());
    let cm: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "one"}, "data": {"k": "v"}})).unwrap();
    let created = cms.create(&PostParams::default(), &cm).await.unwrap();
    let meta = &created.metadata;
    assert!(
        meta.uid.as_ref().is_some_and(|u| u.len() == 36),
        "uid is a UUID: {meta:?}"
    );
    assert!(
        meta.creation_timestamp.is_some(),
        "creationTimestamp set: {meta:?}"
    );
    let rv1: u64 = meta.resource_version.as_ref().unwrap().parse().unwrap();

    let err = api_error(cms.create(&PostParams::default(), &cm).await.unwrap_err());
    assert_eq!(
        (err.code, err.reason.as_str()),
        (409, "AlreadyExists"),
        "{err:?}"
    );

    let mut changed = created.clone();
    changed.data = Some([("k".to_string(), "w".to_string())].into());
    let replaced = cms
        .replace("one", &PostParams::default(), &changed)
        .await
        .unwrap();
    let rv2: u64 = replaced
        .metadata
        .resource_version
        .as_ref()
        .unwrap()
        .parse()
        .unwrap();
    assert!(rv2 > rv1, "resourceVersion grows: {rv1} -> {rv2}");
    let stale = api_error(
        cms.replace("one", &PostParams::default(), &changed)
            .await
            .unwrap_err(),
    );
    assert_eq!(
        (stale.code, stale.reason.as_str()),
        (409, "Conflict"),
        "stale update conflicts: {stale:?}"
    );

    let names: Vec<String> = cms
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|c| c.metadata.name)
        .collect();
    assert_eq!(names, vec!["one".to_string()]);
    cms.delete("one", &DeleteParams::default()).await.unwrap();
    let gone = api_error(cms.get("one").await.unwrap_err());
    assert_eq!(
        (gone.code, gone.reason.as_str()),
        (404, "NotFound"),
        "{gone:?}"
    );
    assert_eq!(gone.message, "configmaps \"one\" not found");

    let missing_ns: Api<ConfigMap> = Api::namespaced(pg.client(), "nowhere");
    let err = api_error(
        missing_ns
            .create(&PostParams::default(), &cm)
            .await
            .unwrap_err(),
    );
    assert_eq!(err.code, 404, "creating in a missing namespace: {err:?}");
    pg.shutdown().await;
}

#[tokio::test]
async fn every_patch_kind_on_a_deployment() {
    let pg = start().await;
    let deps: Api<Deployment> = Api::default_namespaced(pg.client());
    let created = deps
        .create(&PostParams::default(), &deployment("web"))
        .await
        .unwrap();
    assert_eq!(created.metadata.generation, Some(1));

    let merged = deps
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"team": "a"}}})),
        )
        .await
        .unwrap();
    assert_eq!(merged.metadata.labels.unwrap()["team"], "a");
    assert_eq!(
        merged.metadata.generation,
        Some(1),
        "metadata changes do not bump generation"
    );

    let ops: json_patch::Patch =
        serde_json::from_value(json!([{"op": "replace", "path": "/spec/replicas", "value": 3}]))
            .unwrap();
    let jsoned = deps
        .patch("web", &PatchParams::default(), &Patch::Json::<()>(ops))
        .await
        .unwrap();
    assert_eq!(jsoned.spec.as_ref().unwrap().replicas, Some(3));
    assert_eq!(
        jsoned.metadata.generation,
        Some(2),
        "spec changes bump generation"
    );

    let strategic = json!({"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "app:2", "env": [{"name": "B", "value": "2"}]}]}}}});
    let patched = deps
        .patch("web", &PatchParams::default(), &Patch::Strategic(strategic))
        .await
        .unwrap();
    let containers = patched.spec.unwrap().template.spec.unwrap().containers;
    assert_eq!(
        containers.len(),
        2,
        "strategic merge keeps the sidecar: {containers:?}"
    );
    assert_eq!(containers[0].image.as_deref(), Some("app:2"));
    let env: Vec<_> = containers[0]
        .env
        .clone()
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert_eq!(env, vec!["A", "B"], "env merged by name");

    let applied = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}, "spec": {"replicas": 5}});
    let err = api_error(
        deps.patch(
            "web",
            &PatchParams::apply("scaler"),
            &Patch::Apply(&applied),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(
        err.code, 409,
        "apply conflicts with the manager that set replicas: {err:?}"
    );
    let forced = deps
        .patch(
            "web",
            &PatchParams::apply("scaler").force(),
            &Patch::Apply(&applied),
        )
        .await
        .unwrap();
    assert_eq!(forced.spec.as_ref().unwrap().replicas, Some(5));
    let managers: Vec<(String, String)> = forced
        .metadata
        .managed_fields
        .unwrap()
        .into_iter()
        .map(|m| (m.manager.unwrap(), m.operation.unwrap()))
        .collect();
    assert!(
        managers.contains(&("scaler".to_string(), "Apply".to_string())),
        "{managers:?}"
    );

    // Apply creates, then the same manager can drop a field it owned.
    let fresh = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "ssa", "labels": {"x": "1", "y": "2"}},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "ssa"}}, "template": {"metadata": {"labels": {"app": "ssa"}}, "spec": {"containers": [{"name": "c", "image": "i:1"}]}}}});
    deps.patch("ssa", &PatchParams::apply("me"), &Patch::Apply(&fresh))
        .await
        .unwrap();
    let mut less = fresh.clone();
    less["metadata"]["labels"] = json!({"x": "1"});
    let after = deps
        .patch("ssa", &PatchParams::apply("me"), &Patch::Apply(&less))
        .await
        .unwrap();
    assert_eq!(
        after.metadata.labels.unwrap().len(),
        1,
        "the label the manager stopped applying is removed"
    );

    let unchanged = deps
        .patch("ssa", &PatchParams::apply("me"), &Patch::Apply(&less))
        .await
        .unwrap();
    assert_eq!(
        unchanged.metadata.resource_version,
        deps.get("ssa").await.unwrap().metadata.resource_version,
        "an identical apply is a no-op"
    );
    pg.shutdown().await;
}

#[tokio::test]
async fn custom_resources_validate_default_prune_and_reject_strategic_patches() {
    let pg = start().await;
    let api = widgets(&pg).await;
    let created = api
        .create(
            &PostParams::default(),
            &widget(
                "w",
                json!({"size": "small", "unknown": 1, "free": {"a": {"b": 1}}}),
            ),
        )
        .await
        .unwrap();
    assert_eq!(
        created.data["spec"],
        json!({"size": "small", "replicas": 1, "free": {"a": {"b": 1}}}),
        "defaults applied, unknown pruned, preserved kept"
    );

    let bad = api
        .create(
            &PostParams::default(),
            &widget("bad", json!({"size": "huge", "replicas": -1, "port": true})),
        )
        .await
        .unwrap_err();
    let bad = api_error(bad);
    assert_eq!((bad.code, bad.reason.as_str()), (422, "Invalid"), "{bad:?}");
    let mut fields: Vec<String> = bad
        .details
        .unwrap()
        .causes
        .into_iter()
        .map(|c| c.field)
        .collect();
    fields.sort();
    assert_eq!(fields, vec!["spec.port", "spec.replicas", "spec.size"]);
    let missing = api_error(
        api.create(&PostParams::default(), &widget("none", json!({})))
            .await
            .unwrap_err(),
    );
    assert_eq!(missing.details.unwrap().causes[0].field, "spec.size");

    let err = api_error(
        api.patch(
            "w",
            &PatchParams::default(),
            &Patch::Strategic(json!({"spec": {"size": "large"}})),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(
        (err.code, err.reason.as_str()),
        (415, "UnsupportedMediaType"),
        "{err:?}"
    );

    // Map-type lists merge by key under server-side apply.
    api.patch("w", &PatchParams::apply("a"), &Patch::Apply(json!({"apiVersion": "example.com/v1", "kind": "Widget", "spec": {"size": "small", "ports": [{"name": "http", "port": 80}]}}))).await.unwrap();
    let both = api.patch("w", &PatchParams::apply("b"), &Patch::Apply(json!({"apiVersion": "example.com/v1", "kind": "Widget", "spec": {"ports": [{"name": "grpc", "port": 90}]}}))).await.unwrap();
    assert_eq!(
        both.data["spec"]["ports"],
        json!([{"name": "http", "port": 80}, {"name": "grpc", "port": 90}])
    );
    // CEL rules (x-kubernetes-validations) are enforced.
    let cel = api_error(
        api.create(
            &PostParams::default(),
            &widget("big", json!({"size": "large", "replicas": 6})),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(cel.code, 422, "{cel:?}");
    assert!(
        cel.message.contains("large widgets run at most 5 replicas"),
        "{cel:?}"
    );
    api.create(
        &PostParams::default(),
        &widget("big", json!({"size": "large", "replicas": 5})),
    )
    .await
    .unwrap();
    // Deleting the CRD stops serving the resource and deletes its objects.
    let crds: Api<CustomResourceDefinition> = Api::all(pg.client());
    crds.delete("widgets.example.com", &DeleteParams::default())
        .await
        .unwrap();
    eventually("the widgets to be deleted with their CRD", || async {
        (pg.object_count("example.com", "widgets") == 0).then_some(())
    })
    .await;
    let gone = api_error(api.list(&ListParams::default()).await.unwrap_err());
    assert_eq!(gone.code, 404, "{gone:?}");
    pg.shutdown().await;
}

#[tokio::test]
async fn status_and_scale_subresources() {
    let pg = start().await;
    let api = widgets(&pg).await;
    let mut w = widget("s", json!({"size": "small", "replicas": 2}));
    w.data["status"] = json!({"phase": "Fake"});
    let created = api.create(&PostParams::default(), &w).await.unwrap();
    assert!(
        created.data.get("status").is_none(),
        "status is dropped on create: {:?}",
        created.data
    );

    let via_main = api
        .patch(
            "s",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"phase": "Ignored"}})),
        )
        .await
        .unwrap();
    assert!(
        via_main.data.get("status").is_none(),
        "status changes through the main resource are ignored"
    );
    let via_status = api
        .patch_status("s", &PatchParams::default(), &Patch::Merge(json!({"spec": {"size": "large"}, "status": {"phase": "Ready", "replicas": 2, "selector": "app=demo"}})))
        .await
        .unwrap();
    assert_eq!(via_status.data["status"]["phase"], "Ready");
    assert_eq!(
        via_status.data["spec"]["size"], "small",
        "spec changes through /status are ignored"
    );
    assert_eq!(
        via_status.metadata.generation,
        Some(1),
        "status writes do not bump generation"
    );

    let applied = api
        .patch_status(
            "s",
            &PatchParams::apply("widget-controller").force(),
            &Patch::Apply(json!({"apiVersion": "example.com/v1", "kind": "Widget", "status": {"phase": "Applied", "replicas": 2, "selector": "app=demo"}})),
        )
        .await
        .unwrap();
    assert_eq!(applied.data["status"]["phase"], "Applied");
    assert_eq!(applied.data["spec"]["size"], "small");
    let status_managers: Vec<_> = applied
        .metadata
        .managed_fields
        .unwrap()
        .into_iter()
        .filter(|m| m.subresource.as_deref() == Some("status"))
        .map(|m| (m.manager.unwrap(), m.operation.unwrap()))
        .collect();
    assert!(
        status_managers.contains(&("widget-controller".to_string(), "Apply".to_string())),
        "{status_managers:?}"
    );
    let scale = api.get_scale("s").await.unwrap();
    assert_eq!(scale.spec.unwrap().replicas, Some(2));
    assert_eq!(
        scale.status.as_ref().unwrap().selector.as_deref(),
        Some("app=demo")
    );
    api.patch_scale(
        "s",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": 7}})),
    )
    .await
    .unwrap();
    let after = api.get("s").await.unwrap();
    assert_eq!(after.data["spec"]["replicas"], 7);
    assert_eq!(after.metadata.generation, Some(2));

    let deps: Api<Deployment> = Api::default_namespaced(pg.client());
    deps.create(&PostParams::default(), &deployment("d"))
        .await
        .unwrap();
    let s = deps.get_scale("d").await.unwrap();
    assert_eq!(s.status.unwrap().selector.as_deref(), Some("app=d"));
    deps.patch_scale(
        "d",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": 4}})),
    )
    .await
    .unwrap();
    assert_eq!(deps.get("d").await.unwrap().spec.unwrap().replicas, Some(4));
    pg.shutdown().await;
}

#[tokio::test]
async fn selectors_and_paging() {
    let pg = start().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(pg.client());
    for i in 0..7 {
        let tier = if i % 2 == 0 { "front" } else { "back" };
        let cm: ConfigMap = serde_json::from_value(json!({"metadata": {"name": format!("cm{i}"), "labels": {"tier": tier, "n": i.to_string()}}})).unwrap();
        cms.create(&PostParams::default(), &cm).await.unwrap();
    }
    let names = |l: kube::core::ObjectList<ConfigMap>| {
        l.items
            .into_iter()
            .map(|c| c.metadata.name.unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        names(
            cms.list(&ListParams::default().labels("tier=back"))
                .await
                .unwrap()
        ),
        vec!["cm1", "cm3", "cm5"]
    );
    assert_eq!(
        names(
            cms.list(&ListParams::default().labels("tier=front,n notin (0,2)"))
                .await
                .unwrap()
        ),
        vec!["cm4", "cm6"]
    );
    assert_eq!(
        names(
            cms.list(&ListParams::default().fields("metadata.name=cm3"))
                .await
                .unwrap()
        ),
        vec!["cm3"]
    );
    let mut seen = Vec::new();
    let mut params = ListParams::default().limit(3);
    loop {
        let page = cms.list(&params).await.unwrap();
        let token = page.metadata.continue_.clone();
        seen.extend(names(page));
        match token {
            Some(t) if !t.is_empty() => params = params.continue_token(&t),
            _ => break,
        }
    }
    assert_eq!(seen.len(), 7, "paging returns every object once: {seen:?}");

    // An exact list at an old version the playground cannot reconstruct is 410 Expired.
    let rv = cms
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    let exact = ListParams::default()
        .at(&rv)
        .matching(kube::api::VersionMatch::Exact);
    assert_eq!(
        cms.list(&exact).await.unwrap().items.len(),
        7,
        "nothing changed since: served"
    );
    cms.delete("cm0", &Default::default()).await.unwrap();
    let gone = api_error(cms.list(&exact).await.unwrap_err());
    assert_eq!(
        (gone.code, gone.reason.as_str()),
        (410, "Expired"),
        "{gone:?}"
    );
    pg.shutdown().await;
}

#[tokio::test]
async fn finalizers_and_owner_garbage_collection() {
    let pg = start().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(pg.client());
    let owner = cms
        .create(
            &PostParams::default(),
            &serde_json::from_value(
                json!({"metadata": {"name": "owner", "finalizers": ["example.com/hold"]}}),
            )
            .unwrap(),
        )
        .await
        .unwrap();
    let uid = owner.metadata.uid.clone().unwrap();
    for name in ["dep1", "dep2"] {
        let dep: ConfigMap = serde_json::from_value(json!({"metadata": {"name": name, "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": uid}]}})).unwrap();
        cms.create(&PostParams::default(), &dep).await.unwrap();
    }
    let pending = cms.delete("owner", &DeleteParams::default()).await.unwrap();
    let held = pending.left().expect("a finalizer holds the object");
    assert!(
        held.metadata.deletion_timestamp.is_some(),
        "deletionTimestamp set: {:?}",
        held.metadata
    );
    assert!(
        cms.get("dep1").await.is_ok(),
        "dependents stay while the owner exists"
    );
    cms.patch(
        "owner",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    eventually("owner and dependents to be collected", || async {
        let left = cms.list(&ListParams::default()).await.unwrap().items.len();
        (left == 0).then_some(())
    })
    .await;

    // Foreground: the owner stays (with the foregroundDeletion finalizer) until dependents go.
    let owner = cms
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "fg"}})).unwrap(),
        )
        .await
        .unwrap();
    let uid = owner.metadata.uid.unwrap();
    let dep: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "fg-dep", "finalizers": ["example.com/slow"], "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "fg", "uid": uid}]}})).unwrap();
    cms.create(&PostParams::default(), &dep).await.unwrap();
    cms.delete("fg", &DeleteParams::foreground()).await.unwrap();
    let fg = eventually("the dependent to be marked for deletion", || async {
        let d = cms.get("fg-dep").await.ok()?;
        d.metadata.deletion_timestamp.is_some().then_some(())?;
        cms.get("fg").await.ok()
    })
    .await;
    assert!(
        fg.metadata
            .finalizers
            .unwrap()
            .contains(&"foregroundDeletion".to_string())
    );
    cms.patch(
        "fg-dep",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    eventually("the foreground owner to go", || async {
        cms.get("fg").await.is_err().then_some(())
    })
    .await;

    // Orphan: dependents lose the owner reference and stay.
    let owner = cms
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "or"}})).unwrap(),
        )
        .await
        .unwrap();
    let dep: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "or-dep", "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "or", "uid": owner.metadata.uid.unwrap()}]}})).unwrap();
    cms.create(&PostParams::default(), &dep).await.unwrap();
    cms.delete("or", &DeleteParams::orphan()).await.unwrap();
    let orphan = cms.get("or-dep").await.unwrap();
    assert!(
        orphan
            .metadata
            .owner_references
            .unwrap_or_default()
            .is_empty()
    );
    pg.shutdown().await;
}

#[tokio::test]
async fn injected_faults_fail_the_next_matching_requests() {
    let pg = start().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(pg.client());
    pg.faults()
        .fail_next(Some("list"), Some("configmaps"), 500, 2);
    for _ in 0..2 {
        let err = api_error(cms.list(&ListParams::default()).await.unwrap_err());
        assert_eq!((err.code, err.reason.as_str()), (500, "InternalError"));
    }
    cms.list(&ListParams::default())
        .await
        .expect("the third list succeeds");
    cms.get("nothing").await.unwrap_err();
    // kube's default client retries 503s, so they are absorbed but consumed.
    pg.faults().fail_next(Some("list"), None, 503, 2);
    cms.list(&ListParams::default())
        .await
        .expect("kube retries 503 transparently");
    assert_eq!(pg.faults().pending(), 0);
    pg.shutdown().await;
}

#[tokio::test]
async fn events_are_shared_between_core_and_events_k8s_io() {
    let pg = start().await;
    let v1: Api<EventV1> = Api::default_namespaced(pg.client());
    let ev: EventV1 = serde_json::from_value(json!({
        "metadata": {"name": "e1"}, "eventTime": "2025-01-01T00:00:00.000000Z", "reason": "Promoted", "note": "canary promoted",
        "type": "Normal", "action": "Promote", "reportingController": "sluice.dev/controller", "reportingInstance": "sluice-0",
        "regarding": {"kind": "Rollout", "name": "demo", "namespace": "default"}
    }))
    .unwrap();
    v1.create(&PostParams::default(), &ev).await.unwrap();
    let core: Api<CoreEvent> = Api::default_namespaced(pg.client());
    let listed = core.list(&ListParams::default()).await.unwrap();
    let e = &listed.items[0];
    assert_eq!(
        (e.reason.as_deref(), e.message.as_deref()),
        (Some("Promoted"), Some("canary promoted"))
    );
    assert_eq!(e.involved_object.name.as_deref(), Some("demo"));
    pg.shutdown().await;
}

#[tokio::test]
async fn watcher_and_reflector_survive_a_forced_410() {
    let pg = start().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(pg.client());
    let make = |name: &str| {
        serde_json::from_value::<ConfigMap>(json!({"metadata": {"name": name}})).unwrap()
    };
    cms.create(&PostParams::default(), &make("a"))
        .await
        .unwrap();

    // Count re-lists (Init events) to prove the 410s happened.
    // Count re-lists (Init events) to prove the 410s happened. Errors (the 410s themselves)
    // are skipped, as a controller does; the backoff then re-lists.
    let count_inits = |counter: Arc<AtomicUsize>| {
        move |e: Result<watcher::Event<ConfigMap>, watcher::Error>| {
            if matches!(e, Ok(watcher::Event::Init)) {
                counter.fetch_add(1, Ordering::SeqCst);
            }
            async {}
        }
    };
    let (reader, writer) = reflector::store::<ConfigMap>();
    let inits = Arc::new(AtomicUsize::new(0));
    let stream = reflector::reflector(writer, watcher(cms.clone(), watcher::Config::default()))
        .default_backoff();
    let task = tokio::spawn(stream.for_each(count_inits(inits.clone())));
    let (sreader, swriter) = reflector::store::<ConfigMap>();
    let sinits = Arc::new(AtomicUsize::new(0));
    let streaming = reflector::reflector(
        swriter,
        watcher(cms.clone(), watcher::Config::default().streaming_lists()),
    )
    .default_backoff();
    let stask = tokio::spawn(streaming.for_each(count_inits(sinits.clone())));
    reader.wait_until_ready().await.unwrap();
    sreader.wait_until_ready().await.unwrap();

    let names = |s: &reflector::Store<ConfigMap>| {
        let mut n: Vec<String> = s
            .state()
            .iter()
            .map(|c| c.metadata.name.clone().unwrap())
            .collect();
        n.sort();
        n
    };
    for round in 0..2 {
        cms.create(&PostParams::default(), &make(&format!("r{round}")))
            .await
            .unwrap();
        // A write elsewhere moves the global resourceVersion past what the watchers saw, so
        // their resumed watches are older than the expired history: 410, then a re-list.
        let secrets: Api<k8s_openapi::api::core::v1::Secret> = Api::default_namespaced(pg.client());
        secrets
            .create(
                &PostParams::default(),
                &serde_json::from_value(json!({"metadata": {"name": format!("bump{round}")}}))
                    .unwrap(),
            )
            .await
            .unwrap();
        pg.force_gone();
        cms.create(&PostParams::default(), &make(&format!("s{round}")))
            .await
            .unwrap();
        cms.delete(&format!("r{round}"), &DeleteParams::default())
            .await
            .unwrap();
        // Each watcher re-lists (after kube's backoff) before the next round.
        for (label, counter) in [("list-watch", &inits), ("streaming-list", &sinits)] {
            eventually(
                &format!(
                    "the {label} watcher to re-list after 410 number {}",
                    round + 1
                ),
                || async { (counter.load(Ordering::SeqCst) >= round + 2).then_some(()) },
            )
            .await;
        }
    }
    let mut expected: Vec<String> = cms
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|c| c.metadata.name.unwrap())
        .collect();
    expected.sort();
    assert_eq!(expected, vec!["a", "s0", "s1"]);
    for (label, store) in [("list-watch", &reader), ("streaming-list", &sreader)] {
        eventually(
            &format!("the {label} reflector to match the server"),
            || async { (names(store) == expected).then_some(()) },
        )
        .await;
    }
    task.abort();
    stask.abort();

    // A raw watch from a compacted resourceVersion gets a 410 ERROR event.
    let old = "1".to_string();
    pg.expire_history();
    let mut raw = cms
        .watch(&kube::api::WatchParams::default(), &old)
        .await
        .unwrap()
        .boxed();
    match raw.next().await {
        Some(Ok(kube::api::WatchEvent::Error(e))) => assert_eq!(e.code, 410, "{e:?}"),
        other => panic!("expected a 410 ERROR event, got {other:?}"),
    }
    pg.shutdown().await;
}

/// Built-in kinds are validated as kube-apiserver validates them: a 422 `Invalid` whose
/// `details.causes` name each field (pod template labels, container names and images, ports,
/// negative quantities), and a 400 for a quantity that does not parse (decoding fails first on
/// a real server). Nothing is stored.
#[tokio::test]
async fn built_in_pod_templates_are_validated_like_kube_apiserver() {
    let pg = start().await;
    let deployments: Api<Deployment> = Api::namespaced(pg.client(), "default");
    let mut bad = deployment("bad-fields");
    let template = bad.spec.as_mut().unwrap().template.spec.as_mut().unwrap();
    template.containers[0].name = "App_1".into();
    template.containers[1].image = None;
    template.containers[1].ports = Some(vec![
        serde_json::from_value(json!({"containerPort": 70000, "name": "HTTP"})).unwrap(),
    ]);
    template.containers[1].resources =
        Some(serde_json::from_value(json!({"requests": {"cpu": "-1"}})).unwrap());
    let labels = bad
        .spec
        .as_mut()
        .unwrap()
        .template
        .metadata
        .as_mut()
        .unwrap();
    labels
        .labels
        .as_mut()
        .unwrap()
        .insert("tier".into(), "front end".into());
    let err = api_error(
        deployments
            .create(&PostParams::default(), &bad)
            .await
            .unwrap_err(),
    );
    assert_eq!((err.code, err.reason.as_str()), (422, "Invalid"), "{err:?}");
    let causes = err.details.clone().unwrap().causes;
    let fields: Vec<(&str, &str)> = causes
        .iter()
        .map(|c| (c.reason.as_str(), c.field.as_str()))
        .collect();
    let c = "spec.template.spec.containers";
    assert_eq!(
        fields,
        [
            ("FieldValueInvalid", "spec.template.metadata.labels"),
            (
                "FieldValueInvalid",
                &*format!("{c}[1].resources.requests[cpu]")
            ),
            ("FieldValueInvalid", &*format!("{c}[0].name")),
            ("FieldValueRequired", &*format!("{c}[1].image")),
            (
                "FieldValueInvalid",
                &*format!("{c}[1].ports[0].containerPort")
            ),
            ("FieldValueInvalid", &*format!("{c}[1].ports[0].name")),
        ],
        "{err:?}"
    );
    assert!(
        err.message
            .starts_with("Deployment.apps \"bad-fields\" is invalid: ")
            || err
                .message
                .starts_with("Deployment \"bad-fields\" is invalid: "),
        "{err:?}"
    );
    assert!(
        causes[0]
            .message
            .starts_with("Invalid value: \"front end\": a valid label must be an empty string"),
        "{causes:?}"
    );

    let mut unparseable = deployment("bad-quantity");
    unparseable
        .spec
        .as_mut()
        .unwrap()
        .template
        .spec
        .as_mut()
        .unwrap()
        .containers[0]
        .resources =
        Some(serde_json::from_value(json!({"limits": {"memory": "invalid"}})).unwrap());
    let err = api_error(
        deployments
            .create(&PostParams::default(), &unparseable)
            .await
            .unwrap_err(),
    );
    assert_eq!(
        (err.code, err.reason.as_str()),
        (400, "BadRequest"),
        "{err:?}"
    );
    assert_eq!(
        err.message,
        "Deployment in version \"v1\" cannot be handled as a Deployment: quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
    );
    for name in ["bad-fields", "bad-quantity"] {
        assert!(
            deployments.get_opt(name).await.unwrap().is_none(),
            "{name} not stored"
        );
    }
    pg.shutdown().await;
}
