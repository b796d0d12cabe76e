//! The kubelet API's SubjectAccessReviews: asks the API server whether a client may do what
//! its request needs on this node's `nodes/<subresource>` (upstream's webhook authorizer).

use futures::future::BoxFuture;
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use kube::api::PostParams;
use kube::Api;

use bramble_kubelet_server::{AccessReviewer, ClientIdentity, RequestAttributes};

/// Reviews through the kubelet's own API client (the `system:node` role may create
/// SubjectAccessReviews).
pub struct SubjectAccessReviewer {
    client: kube::Client,
    node_name: String,
}

impl SubjectAccessReviewer {
    /// A reviewer for the node `node_name`.
    pub fn new(client: kube::Client, node_name: String) -> Self {
        SubjectAccessReviewer { client, node_name }
    }
}

/// The review upstream's kubelet sends for `id` doing `attrs` on the node `node_name`.
pub fn review_for(
    node_name: &str,
    id: &ClientIdentity,
    attrs: &RequestAttributes,
) -> SubjectAccessReview {
    SubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            user: Some(id.user.clone()),
            groups: Some(id.groups.clone()),
            resource_attributes: Some(ResourceAttributes {
                verb: Some(attrs.verb.clone()),
                version: Some("v1".into()),
                resource: Some("nodes".into()),
                subresource: Some(attrs.subresource.clone()),
                name: Some(node_name.to_string()),
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    }
}

impl AccessReviewer for SubjectAccessReviewer {
    fn review<'a>(
        &'a self,
        id: &'a ClientIdentity,
        attrs: &'a RequestAttributes,
    ) -> BoxFuture<'a, Result<bool, String>> {
        Box::pin(async move {
            let reviews: Api<SubjectAccessReview> = Api::all(self.client.clone());
            let answer = reviews
                .create(
                    &PostParams::default(),
                    &review_for(&self.node_name, id, attrs),
                )
                .await
                .map_err(|e| e.to_string())?;
            Ok(answer.status.is_some_and(|s| s.allowed))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reviews_name_the_node_and_subresource() {
        let sar = review_for(
            "pi-1",
            &ClientIdentity {
                user: "viewer".into(),
                groups: vec!["team".into()],
            },
            &bramble_kubelet_server::authz::request_attributes(
                &http::Method::GET,
                "/stats/summary",
            ),
        );
        let attrs = sar.spec.resource_attributes.unwrap();
        assert_eq!(attrs.resource.as_deref(), Some("nodes"));
        assert_eq!(attrs.subresource.as_deref(), Some("stats"));
        assert_eq!(attrs.name.as_deref(), Some("pi-1"));
        assert_eq!(attrs.verb.as_deref(), Some("get"));
        assert_eq!(sar.spec.user.as_deref(), Some("viewer"));
    }
}
