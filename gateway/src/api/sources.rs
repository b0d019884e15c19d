//! `GET /v1/sources/{id}/tables/{table}/columns`: a source table's columns, for
//! stewards describing a dataset (`yiwang dataset import-schema`). Admins may read any
//! source; a steward only the sources already used by datasets of their department.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use yiwang_catalog::model::Role;
use yiwang_catalog::validate;

use super::{ApiError, Caller};
use crate::node::Node;

pub async fn columns(
    State(node): State<Arc<Node>>,
    caller: Caller,
    Path((source, table)): Path<(String, String)>,
) -> Result<Json<serde_json::Value>, ApiError> {
    {
        // A source's schema is its department's business: a steward may describe the
        // tables of sources that datasets of their own department already use.
        let s = node.state.read();
        if !s.has_role(caller.id(), Role::Admin) {
            if !s.has_role(caller.id(), Role::Steward) {
                return Err(ApiError::forbidden(
                    "only stewards and admins read source schemas",
                ));
            }
            let own = s.datasets.values().any(|d| {
                d.dept == caller.dept() && d.source.as_ref().is_some_and(|r| r.id == source)
            });
            if !own {
                return Err(ApiError::forbidden(format!(
                    "source '{source}' serves no dataset of {}: its schema is for the stewards of the departments it serves, and for admins",
                    caller.dept()
                )));
            }
        }
    }
    if !validate::is_identifier(&table) {
        return Err(ApiError::bad_request(
            "invalid_input",
            format!("invalid table: '{table}' is not a table name"),
        ));
    }
    let src = node.sources.require(&source)?;
    let cols = src.list_columns(&table).await?;
    let columns: Vec<serde_json::Value> = cols
        .into_iter()
        .map(|(name, t)| serde_json::json!({"name": name, "type": t.as_str()}))
        .collect();
    Ok(Json(
        serde_json::json!({"source": source, "table": table, "columns": columns}),
    ))
}
