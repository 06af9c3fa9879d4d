//! Owner checks for the objects the controller creates under deterministic names (ReplicaSets,
//! AnalysisRuns): a 409 on create means either an earlier reconcile of ours made it (its cache
//! had not caught up) or someone else owns the name, and Sluice never adopts another's object.
//! Pure: reads owner references only.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

/// `None` when the object with `owners` is controlled by the object with `uid`; otherwise who
/// owns it, for the error (`owned by Kind/name`, or `not owned by anyone`).
pub fn foreign_owner(uid: Option<&str>, owners: &[OwnerReference]) -> Option<String> {
    let controller = owners.iter().find(|o| o.controller == Some(true));
    if let (Some(owner), Some(uid)) = (controller, uid)
        && owner.uid == uid
    {
        return None;
    }
    Some(match controller.or(owners.first()) {
        Some(o) => format!("owned by {}/{}", o.kind, o.name),
        None => "not owned by anyone".to_owned(),
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// An owner reference, for the tests of every owner check.
    pub(crate) fn owner(kind: &str, name: &str, uid: &str, controller: bool) -> OwnerReference {
        OwnerReference {
            api_version: "v1".into(),
            kind: kind.into(),
            name: name.into(),
            uid: uid.into(),
            controller: Some(controller),
            block_owner_deletion: None,
        }
    }

    #[test]
    fn only_the_controller_owner_with_our_uid_is_ours() {
        let ours = [owner("Rollout", "web", "mine", true)];
        assert_eq!(foreign_owner(Some("mine"), &ours), None);
        // Named by us, but only as a non-controller owner: not ours to drive.
        let shared = [
            owner("Rollout", "web", "mine", false),
            owner("Deployment", "other", "theirs", true),
        ];
        assert_eq!(
            foreign_owner(Some("mine"), &shared).as_deref(),
            Some("owned by Deployment/other")
        );
        let loose = [owner("ConfigMap", "cm", "x", false)];
        assert_eq!(
            foreign_owner(Some("mine"), &loose).as_deref(),
            Some("owned by ConfigMap/cm")
        );
        assert_eq!(
            foreign_owner(Some("mine"), &[]).as_deref(),
            Some("not owned by anyone")
        );
        // A Rollout the server never gave a uid owns nothing.
        assert!(foreign_owner(None, &ours).is_some());
    }
}
