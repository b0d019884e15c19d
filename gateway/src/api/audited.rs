//! Writing the audit record of a request, in one place.
//!
//! A handler builds an [`Audited`] as soon as it knows who is asking and what for,
//! fills in what it learns (dataset, fields, rows), and passes its result through
//! [`Audited::finish`]: that writes the record — allow, deny or error — durably, and
//! only then lets the response go. If the record cannot be written the response is a
//! 503 and no data leaves. A data response goes through [`Audited::finish_data`]
//! instead, whose [`Completion`] wraps the body and writes the completion record once the
//! last byte is sent (or the client goes away).

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Instant;

use axum::body::{Body, Bytes, HttpBody};

use yiwang_catalog::model::Dataset;
use yiwang_policies::Decision;

use super::{ApiError, Caller, context::current_request_id};
use crate::audit::{AuditDecision, AuditEvent};
use crate::node::Node;

pub struct Audited {
    pub event: AuditEvent,
    started: Instant,
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
            started: Instant::now(),
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

    /// Records the outcome and returns the result, or a 503 if the record could not be
    /// written.
    pub async fn finish<T>(self, node: &Node, result: Result<T, ApiError>) -> Result<T, ApiError> {
        self.write(node, result).await.map(|(t, _)| t)
    }

    /// As [`finish`](Self::finish), for a response that carries data: the returned
    /// [`Completion`] wraps the body and records what was sent.
    pub async fn finish_data<T>(
        self,
        node: &Node,
        result: Result<T, ApiError>,
    ) -> Result<(T, Completion), ApiError> {
        let started = self.started;
        let (t, record) = self.write(node, result).await?;
        Ok((
            t,
            Completion {
                log: node.audit.clone(),
                seq: record.seq,
                event: record.event,
                started,
            },
        ))
    }

    async fn write<T>(
        mut self,
        node: &Node,
        result: Result<T, ApiError>,
    ) -> Result<(T, crate::audit::AuditRecord), ApiError> {
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
        let record = node.audit.append(self.event).await.map_err(|e| {
            ApiError::new(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "audit_unavailable",
                format!("the audit record cannot be written, so nothing is served: {e}"),
            )
        })?;
        result.map(|t| (t, record))
    }
}

/// What a streamed answer learns only while it is sent, for its completion record: the
/// rows handed to the connection, and the error that cut it off, if one did.
#[derive(Clone, Default)]
pub struct Progress(Arc<Mutex<ProgressState>>);

#[derive(Default)]
struct ProgressState {
    rows: u64,
    failure: Option<ApiError>,
}

impl Progress {
    pub fn add_rows(&self, n: u64) {
        self.state().rows += n;
    }

    /// The answer stops here, for this reason.
    pub fn fail(&self, e: ApiError) {
        self.state().failure = Some(e);
    }

    fn state(&self) -> std::sync::MutexGuard<'_, ProgressState> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// What a data response needs to write its completion record.
pub struct Completion {
    log: crate::audit::AuditLog,
    seq: u64,
    event: AuditEvent,
    started: Instant,
}

impl Completion {
    /// Wraps `body`: once it has been sent to the end, or dropped early because the
    /// client went away, the completion record follows with the bytes sent.
    pub fn body(self, body: Body) -> Body {
        Body::new(CountingBody {
            inner: body,
            sent: 0,
            finished: false,
            completion: Some(self),
            progress: None,
        })
    }

    /// As [`body`](Self::body), for an answer streamed as it is computed: the
    /// completion record takes its rows, and its error if it was cut off, from
    /// `progress`.
    pub fn streamed_body(self, body: Body, progress: Progress) -> Body {
        Body::new(CountingBody {
            inner: body,
            sent: 0,
            finished: false,
            completion: Some(self),
            progress: Some(progress),
        })
    }
}

struct CountingBody {
    inner: Body,
    sent: u64,
    finished: bool,
    completion: Option<Completion>,
    progress: Option<Progress>,
}

impl HttpBody for CountingBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    self.sent += data.len() as u64;
                }
            }
            Poll::Ready(None) => self.finished = true,
            Poll::Ready(Some(Err(_))) | Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for CountingBody {
    fn drop(&mut self) {
        let Some(c) = self.completion.take() else {
            return;
        };
        // hyper may stop polling once the body reports its end by size: that is complete too.
        let finished = self.finished || self.inner.is_end_stream();
        let mut e = c.event;
        e.completes = Some(c.seq);
        e.duration_ms = Some(c.started.elapsed().as_millis() as u64);
        e.bytes = self.sent;
        let failure = self.progress.as_ref().and_then(|p| {
            let mut state = p.state();
            e.rows = state.rows;
            state.failure.take()
        });
        if let Some(err) = failure {
            e.decision = Some(AuditDecision::Error);
            e.status = err.status.as_u16();
            e.reason = format!(
                "{} (the answer was cut off after {} bytes)",
                err.message, self.sent
            );
        } else if !finished {
            // nginx's "client closed request".
            e.status = 499;
            e.reason = format!(
                "the client went away after {} of the response's bytes",
                self.sent
            );
        }
        c.log.append_detached(e);
    }
}
