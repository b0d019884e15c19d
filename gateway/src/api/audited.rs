//! Writing the audit record of a request, in one place.
//!
//! A handler builds an [`Audited`] as soon as it knows who is asking and what for,
//! fills in what it learns (dataset, fields, rows), and passes its result through
//! [`Audited::finish`]: that writes the record — allow, deny or error — durably, and
//! only then lets the response go. If the record cannot be written the response is a
//! 500 and no data leaves.

use yiwang_catalog::model::Dataset;
use yiwang_policies::Decision;

use super::{ApiError, Caller, context::current_request_id};
use crate::audit::{AuditDecision, AuditEvent};
use crate::node::Node;

pub struct Audited {
    pub event: AuditEvent,
}

impl Audited {
    pub fn new(caller: &Caller, action: &str) -> Audited {
        Audited {
            event: AuditEvent {
                request_id: current_request_id(),
                principal: caller.id().to_string(),
                dept: caller.dept().to_string(),
                action: action.to_string(),
                ..Default::default()
            },
        }
    }

    pub fn dataset(&mut self, d: &Dataset) {
        self.event.dataset = Some(d.id.clone());
        self.event.provider_dept = Some(d.dept.clone());
    }

    pub fn dataset_id(&mut self, id: &str) {
        self.event.dataset = Some(id.to_string());
    }

    pub fn decision(&mut self, d: &Decision) {
        self.event.reason = d.reason.clone();
        self.event.grant = d.grant.clone();
    }

    /// Records the outcome and returns the result, or a 500 if the record could not be
    /// written.
    pub async fn finish<T>(
        mut self,
        node: &Node,
        result: Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        let e = &mut self.event;
        match &result {
            Ok(_) => {
                e.decision = Some(AuditDecision::Allow);
                if e.status == 0 {
                    e.status = 200;
                }
            }
            Err(err) => {
                e.decision = Some(if err.status.as_u16() == 403 {
                    AuditDecision::Deny
                } else {
                    AuditDecision::Error
                });
                e.status = err.status.as_u16();
                e.reason = err.message.clone();
                e.rows = 0;
                e.bytes = 0;
            }
        }
        let labels = crate::metrics::DecisionLabels {
            action: e.action.clone(),
            decision: e
                .decision
                .map_or("error", AuditDecision::as_str)
                .to_string(),
        };
        node.metrics.decisions.get_or_create(&labels).inc();
        node.audit
            .append(self.event)
            .await
            .map_err(|e| ApiError::internal(format!("cannot write the audit record: {e}")))?;
        result
    }
}
