//! Tenancy: a Rollout acts only on what is its own. Routing objects stay in its namespace
//! unless the controller allows otherwise; a Service, Deployment or routing object belongs to
//! the first Rollout that names it (creation time, then name), never to two; the Service of the
//! Kubernetes API server is never one of them. `claims` lists what a spec names, so the
//! controller's index and this check agree on the keys.

use super::{InvalidSpec, invalid};
use crate::crd::{Rollout, TrafficRouting};
use crate::engine::model::Observed;

/// One object a Rollout's spec names and would act on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claim {
    /// Its kind: `Service`, `Deployment`, `HTTPRoute`, `VirtualService`, ...
    pub kind: &'static str,
    /// Its namespace (the Rollout's unless the spec names another).
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// The spec field that names it.
    pub field: String,
    /// A routing object, which may leave the namespace only with
    /// `--allow-cross-namespace-routing`.
    pub route: bool,
}

impl Claim {
    /// The key two Rollouts naming the same object share: `Kind/namespace/name`.
    pub fn key(&self) -> String {
        format!("{}/{}/{}", self.kind, self.namespace, self.name)
    }
}

struct Claims<'a> {
    namespace: &'a str,
    out: Vec<Claim>,
}

impl Claims<'_> {
    fn local(&mut self, kind: &'static str, name: &str, field: String) {
        self.add(kind, self.namespace.to_owned(), name, field, false);
    }

    /// A routing object named `name` or, where the router allows it, `namespace/name`.
    fn route(&mut self, kind: &'static str, name: &str, field: String) {
        let (ns, name) = name.split_once('/').unwrap_or((self.namespace, name));
        self.add(kind, ns.to_owned(), name, field, true);
    }

    fn add(
        &mut self,
        kind: &'static str,
        namespace: String,
        name: &str,
        field: String,
        route: bool,
    ) {
        if !name.is_empty() {
            self.out.push(Claim {
                kind,
                namespace,
                name: name.to_owned(),
                field,
                route,
            });
        }
    }
}

fn gateway_claims(c: &mut Claims<'_>, t: &TrafficRouting, f: &str) {
    let Some(g) = &t.gateway_api else { return };
    let f = format!("{f}.gatewayAPI");
    let ns = g.namespace.clone().filter(|n| !n.is_empty());
    let qualify = |name: &str| match &ns {
        Some(ns) => format!("{ns}/{name}"),
        None => name.to_owned(),
    };
    if let Some(r) = &g.http_route {
        c.route("HTTPRoute", &qualify(r), format!("{f}.httpRoute"));
    }
    for (i, r) in g.http_routes.iter().enumerate() {
        c.route(
            "HTTPRoute",
            &qualify(&r.name),
            format!("{f}.httpRoutes[{i}].name"),
        );
    }
    if let Some(r) = &g.grpc_route {
        c.route("GRPCRoute", &qualify(r), format!("{f}.grpcRoute"));
    }
    for (i, r) in g.grpc_routes.iter().enumerate() {
        c.route(
            "GRPCRoute",
            &qualify(&r.name),
            format!("{f}.grpcRoutes[{i}].name"),
        );
    }
}

fn istio_claims(c: &mut Claims<'_>, t: &TrafficRouting, f: &str) {
    let Some(istio) = &t.istio else { return };
    let f = format!("{f}.istio");
    if let Some(vs) = &istio.virtual_service {
        c.route(
            "VirtualService",
            &vs.name,
            format!("{f}.virtualService.name"),
        );
    }
    for (i, vs) in istio.virtual_services.iter().enumerate() {
        c.route(
            "VirtualService",
            &vs.name,
            format!("{f}.virtualServices[{i}].name"),
        );
    }
    if let Some(dr) = &istio.destination_rule {
        c.route(
            "DestinationRule",
            &dr.name,
            format!("{f}.destinationRule.name"),
        );
    }
}

fn other_route_claims(c: &mut Claims<'_>, t: &TrafficRouting, f: &str) {
    if let Some(smi) = &t.smi
        && let Some(name) = &smi.traffic_split_name
    {
        c.local("TrafficSplit", name, format!("{f}.smi.trafficSplitName"));
    }
    if let Some(nginx) = &t.nginx {
        if let Some(name) = &nginx.stable_ingress {
            c.local("Ingress", name, format!("{f}.nginx.stableIngress"));
        }
        for (i, name) in nginx.stable_ingresses.iter().enumerate() {
            c.local("Ingress", name, format!("{f}.nginx.stableIngresses[{i}]"));
        }
    }
    if let Some(traefik) = &t.traefik {
        let field = format!("{f}.traefik.weightedTraefikServiceName");
        c.local(
            "TraefikService",
            &traefik.weighted_traefik_service_name,
            field,
        );
    }
}

fn service_claims(c: &mut Claims<'_>, rollout: &Rollout) {
    let s = &rollout.spec.strategy;
    if let Some(canary) = &s.canary {
        let f = "spec.strategy.canary";
        for (svc, field) in [
            (&canary.canary_service, "canaryService"),
            (&canary.stable_service, "stableService"),
        ] {
            if let Some(svc) = svc {
                c.local("Service", svc, format!("{f}.{field}"));
            }
        }
        if let Some(svc) = canary.baseline.as_ref().and_then(|b| b.service.as_ref()) {
            c.local("Service", svc, format!("{f}.baseline.service"));
        }
    }
    if let Some(bg) = &s.blue_green {
        let f = "spec.strategy.blueGreen";
        c.local("Service", &bg.active_service, format!("{f}.activeService"));
        if let Some(svc) = &bg.preview_service {
            c.local("Service", svc, format!("{f}.previewService"));
        }
    }
}

/// The objects a Rollout's spec names and would act on, in spec order.
pub fn claims(rollout: &Rollout) -> Vec<Claim> {
    let namespace = rollout.metadata.namespace.as_deref().unwrap_or_default();
    let mut c = Claims {
        namespace,
        out: Vec::new(),
    };
    service_claims(&mut c, rollout);
    if let Some(w) = &rollout.spec.workload_ref {
        c.local("Deployment", &w.name, "spec.workloadRef.name".into());
    }
    let canary = rollout.spec.strategy.canary.as_ref();
    if let Some(t) = canary.and_then(|c| c.traffic_routing.as_ref()) {
        let f = "spec.strategy.canary.trafficRouting";
        gateway_claims(&mut c, t, f);
        istio_claims(&mut c, t, f);
        other_route_claims(&mut c, t, f);
    }
    c.out
}

/// Whether a Service is the Kubernetes API server's, which no Rollout may manage.
fn is_api_server(observed: &Observed, claim: &Claim) -> bool {
    claim.kind == "Service"
        && ((claim.namespace == "default" && claim.name == "kubernetes")
            || observed.tenancy.api_server_services.contains(&claim.name))
}

fn check_claim(observed: &Observed, rollout_ns: &str, claim: &Claim) -> Result<(), InvalidSpec> {
    let (kind, name) = (claim.kind, &claim.name);
    if is_api_server(observed, claim) {
        return Err(invalid(
            &claim.field,
            format!(
                "Service {name:?} fronts the Kubernetes API server; a Rollout cannot manage it"
            ),
        ));
    }
    if claim.route
        && claim.namespace != rollout_ns
        && !observed.tenancy.allow_cross_namespace_routing
    {
        return Err(invalid(
            &claim.field,
            format!(
                "{kind} {name:?} is in namespace {:?}, not the Rollout's {rollout_ns:?}; routing objects in other namespaces need the controller flag --allow-cross-namespace-routing",
                claim.namespace
            ),
        ));
    }
    match observed.tenancy.claimed_by.get(&claim.key()) {
        Some(other) => Err(invalid(
            &claim.field,
            format!(
                "{kind} {name:?} is already claimed by Rollout {other:?}, which named it first"
            ),
        )),
        None => Ok(()),
    }
}

/// Checks every claim of the spec.
///
/// # Errors
/// The first claim on the API server's Service, on a routing object in another namespace
/// (unless allowed), or on an object another Rollout claimed first.
pub(super) fn check(rollout: &Rollout, observed: &Observed) -> Result<(), InvalidSpec> {
    let namespace = rollout.metadata.namespace.as_deref().unwrap_or_default();
    claims(rollout)
        .iter()
        .try_for_each(|claim| check_claim(observed, namespace, claim))
}

/// A Service the spec names must exist and not be managed by another Rollout.
pub(super) fn check_service(
    observed: &Observed,
    rollout: &str,
    name: &str,
    field: &str,
) -> Result<(), InvalidSpec> {
    match observed.services.get(name) {
        Some(Some(service)) => match &service.managed_by {
            Some(owner) if owner != rollout => Err(invalid(
                field,
                format!("Service {name:?} is managed by Rollout {owner:?}"),
            )),
            Some(_) | None => Ok(()),
        },
        Some(None) | None => Err(invalid(field, format!("Service {name:?} not found"))),
    }
}
