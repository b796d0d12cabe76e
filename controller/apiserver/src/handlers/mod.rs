//! REST handlers for resources: dispatch by method and path shape.

mod apply;
mod create;
mod decode;
pub mod delete;
mod eviction;
mod read;
mod scale;
mod update;

use std::sync::Arc;

use http::Method;

use bramble_api::{ResourceInfo, Status};

use crate::body::{self, Response};
use crate::path::ResourceRoute;
use crate::query::Query;
use crate::state::ApiState;
use crate::watch;

pub use create::{create_object, record_creation};
pub use delete::delete_object;
pub use read::prefix as read_prefix;

/// One resource request, resolved against the registry.
pub struct Ctx<'a> {
    pub state: &'a Arc<ApiState>,
    pub info: Arc<ResourceInfo>,
    pub route: ResourceRoute,
    pub query: Query,
    pub content_type: Option<String>,
    /// The response form `Accept` asked for.
    pub output: crate::negotiate::Output,
    /// The `User-Agent` header (names the field manager of writes without `fieldManager`).
    pub user_agent: Option<String>,
}

impl Ctx<'_> {
    pub fn namespace(&self) -> Option<&str> {
        self.route.namespace.as_deref()
    }

    /// The object name of the path, or a 404-ish error for collection paths.
    pub fn name(&self) -> &str {
        self.route.name.as_deref().unwrap_or("")
    }

    /// The field manager of a non-apply write ([`bramble_api::apply::manager_of`]).
    pub fn manager(&self) -> String {
        bramble_api::apply::manager_of(self.query.get("fieldManager"), self.user_agent.as_deref())
    }

    pub fn key(&self) -> String {
        self.info.store_key(self.namespace(), self.name())
    }

    /// The store as this resource sees it (converting for resources stored in another
    /// resource's form).
    pub fn store(&self) -> std::sync::Arc<dyn bramble_store::Store> {
        crate::converting_store::for_resource(&self.state.store, &self.info)
    }
}

/// Serves a request for a resource path.
pub async fn serve(ctx: Ctx<'_>, method: &Method, body: bytes::Bytes) -> Response {
    let result = dispatch(&ctx, method, body).await;
    result.unwrap_or_else(|s| body::status(&s))
}

async fn dispatch(ctx: &Ctx<'_>, method: &Method, body: bytes::Bytes) -> Result<Response, Status> {
    let info = &ctx.info;
    if info.namespaced && ctx.route.namespace.is_none() && ctx.route.name.is_some() {
        // `/api/v1/pods/x`: a namespaced object needs its namespace
        return Err(not_found());
    }
    if !info.namespaced && ctx.route.namespace.is_some() {
        return Err(not_found());
    }
    if let Some(sub) = &ctx.route.subresource {
        if !info.has_subresource(sub) {
            return Err(not_found());
        }
    }
    let sub = ctx.route.subresource.as_deref();
    let has_name = ctx.route.name.is_some();
    let watching = ctx.route.legacy_watch || ctx.query.flag("watch");
    match (method.clone(), has_name, sub) {
        (Method::GET, _, None) if watching => watch::serve(ctx).await,
        (Method::GET, false, None) => read::list(ctx).await,
        (Method::GET, true, None | Some("status")) => read::get(ctx).await,
        (Method::POST, false, None) => create::create(ctx, &body).await,
        (Method::POST, true, Some("binding")) => update::bind(ctx, &body).await,
        (Method::POST, true, Some("eviction")) => eviction::evict(ctx, &body).await,
        (Method::GET, true, Some("scale")) => scale::get(ctx).await,
        (Method::PUT, true, Some("scale")) => scale::replace(ctx, &body).await,
        (Method::PATCH, true, Some("scale")) => scale::patch(ctx, &body).await,
        (Method::PUT, true, None | Some("status") | Some("finalize")) => {
            update::replace(ctx, &body).await
        }
        (Method::PATCH, true, None) if apply::is_apply(ctx) => apply::apply(ctx, &body).await,
        (Method::PATCH, true, None | Some("status")) => update::patch(ctx, &body).await,
        (Method::DELETE, true, None) => delete::delete(ctx, &body).await,
        (Method::DELETE, false, None) => delete::delete_collection(ctx, &body).await,
        (m, _, _) => Err(Status::new(
            bramble_api::Reason::MethodNotAllowed,
            format!("the server does not allow this method on the requested resource ({m})"),
        )),
    }
}

pub fn not_found() -> Status {
    Status::new(
        bramble_api::Reason::NotFound,
        "the server could not find the requested resource",
    )
}
