//! The HTTPS client of the CLI (and of tools and tests that want one).

use std::path::PathBuf;

use anyhow::{Context, Result};
use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::Value;

use super::Connection;

/// An error answer from the server, or a transport failure.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{status} {code}: {message} (request {request_id})")]
    Api {
        status: StatusCode,
        code: String,
        message: String,
        request_id: String,
    },
    #[error("{0}")]
    Transport(String),
}

pub struct Client {
    http: reqwest::Client,
    base: String,
}

fn need(p: &Option<PathBuf>, flag: &str, env: &str) -> Result<PathBuf> {
    p.clone()
        .with_context(|| format!("no {flag} given: pass {flag} PATH or set {env}"))
}

impl Client {
    pub fn new(conn: &Connection) -> Result<Client> {
        let cert = need(&conn.cert, "--cert", "YIWANG_CERT")?;
        let key = need(&conn.key, "--key", "YIWANG_KEY")?;
        let ca = need(&conn.ca, "--ca", "YIWANG_CA")?;
        let http = crate::tls::http_client(&ca, &cert, &key)?;
        Ok(Client {
            http,
            base: conn.server.trim_end_matches('/').to_string(),
        })
    }

    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.http.request(method, format!("{}{}", self.base, path))
    }

    /// Sends a request and returns the response, turning error statuses into
    /// [`ClientError::Api`].
    pub async fn send(&self, req: RequestBuilder) -> Result<reqwest::Response, ClientError> {
        let resp = req.send().await.map_err(|e| {
            let mut msg = format!("cannot reach {}: {e}", self.base);
            let mut src = std::error::Error::source(&e);
            while let Some(s) = src {
                msg.push_str(&format!(": {s}"));
                src = s.source();
            }
            ClientError::Transport(msg)
        })?;
        if resp.status().is_success() {
            return Ok(resp);
        }
        let status = resp.status();
        let rid = resp
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        let e = &body["error"];
        Err(ClientError::Api {
            status,
            code: e["code"].as_str().unwrap_or("unknown").to_string(),
            message: e["message"]
                .as_str()
                .unwrap_or("no error message")
                .to_string(),
            request_id: e["request_id"].as_str().map(String::from).unwrap_or(rid),
        })
    }

    pub async fn json(&self, req: RequestBuilder) -> Result<Value, ClientError> {
        let resp = self.send(req).await?;
        resp.json()
            .await
            .map_err(|e| ClientError::Transport(format!("bad JSON from server: {e}")))
    }

    pub async fn get(&self, path: &str) -> Result<Value, ClientError> {
        self.json(self.request(Method::GET, path)).await
    }
}
