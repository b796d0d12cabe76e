//! Raw HTTP requests through a `kube::Client` for the `api_*` tests: status codes and
//! bodies exactly as the server sends them.

use anyhow::Result;
use http::{Method, Request};
use http_body_util::BodyExt;
use serde_json::Value;

/// Sends requests with any method, content type and `Accept`.
pub struct Http {
    pub client: kube::Client,
}

impl Http {
    /// A client for `c` that does not retry 429/503 itself (kube's default retry policy
    /// would hide the server's answer behind minutes of back-off).
    pub async fn for_controller(c: &super::TestController) -> Result<Http> {
        let kc = kube::config::Kubeconfig::read_from(&c.kubeconfig)?;
        let mut config =
            kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
                .await?;
        config.default_retry = false;
        Ok(Http {
            client: kube::Client::try_from(config)?,
        })
    }

    /// Sends one request; the body is parsed as JSON when it is JSON, else kept as a string.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        content_type: &str,
        accept: Option<&str>,
        body: Vec<u8>,
    ) -> Result<(u16, Value)> {
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header("content-type", content_type);
        if let Some(a) = accept {
            req = req.header("accept", a);
        }
        let resp = self
            .client
            .send(req.body(kube::client::Body::from(body))?)
            .await?;
        let code = resp.status().as_u16();
        let bytes = resp.into_body().collect().await?.to_bytes();
        let v = serde_json::from_slice(&bytes)
            .unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into()));
        Ok((code, v))
    }

    /// A request with a JSON body (or `content_type` when a patch).
    pub async fn json(
        &self,
        method: Method,
        path: &str,
        ct: &str,
        body: &Value,
    ) -> Result<(u16, Value)> {
        self.send(method, path, ct, None, serde_json::to_vec(body)?)
            .await
    }

    pub async fn get(&self, path: &str) -> Result<(u16, Value)> {
        self.send(Method::GET, path, "application/json", None, Vec::new())
            .await
    }

    /// GET that must answer 200: the body.
    pub async fn get_ok(&self, path: &str) -> Result<Value> {
        let (code, body) = self.get(path).await?;
        anyhow::ensure!(code == 200, "GET {path}: {code} {body}");
        Ok(body)
    }

    /// A JSON request that must answer 200 or 201: the body.
    pub async fn json_ok(
        &self,
        method: Method,
        path: &str,
        ct: &str,
        body: &Value,
    ) -> Result<Value> {
        let (code, out) = self.json(method.clone(), path, ct, body).await?;
        anyhow::ensure!(
            code == 200 || code == 201,
            "{method} {path} ({ct}): {code} {out}"
        );
        Ok(out)
    }

    pub async fn post(&self, path: &str, body: &Value) -> Result<(u16, Value)> {
        self.json(Method::POST, path, "application/json", body)
            .await
    }
}
