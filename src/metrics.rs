//! Counters for `GET /metrics`, in Prometheus text format.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// The server's counters; cheap to bump from any task.
pub struct Metrics {
    registry: Registry,
    pub connections: Gauge,
    pub connections_total: Counter,
    pub messages: Counter,
    /// Edits, deletions and reactions stored.
    pub changes: Counter,
    pub deliveries: Counter,
    pub store_errors: Counter,
    pub gap_fills: Counter,
    pub rejected_frames: Counter,
    pub rate_limited: Counter,
    pub slow_consumers: Counter,
    /// Events this node published to the other nodes (messages, presence, typing).
    pub backplane_published: Counter,
    /// Publications that failed (the other nodes catch up from the store).
    pub backplane_publish_failures: Counter,
    /// Events received from other nodes.
    pub backplane_received: Counter,
    /// Times the subscription to the other nodes was (re)established.
    pub backplane_resubscribes: Counter,
    /// Rooms read from the store after a lost subscription or a lost node.
    pub backplane_catch_ups: Counter,
    /// Web Pushes the push services accepted.
    pub pushes_sent: Counter,
    /// Web Pushes that failed for good (after their retries), or were
    /// dropped because the push queue was full.
    pub pushes_failed: Counter,
    /// Files uploaded and stored.
    pub uploads: Counter,
}

impl Metrics {
    /// Registers every counter.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("causerie");
        let m = Metrics {
            registry: Registry::default(),
            connections: Gauge::default(),
            connections_total: Counter::default(),
            messages: Counter::default(),
            changes: Counter::default(),
            deliveries: Counter::default(),
            store_errors: Counter::default(),
            gap_fills: Counter::default(),
            rejected_frames: Counter::default(),
            rate_limited: Counter::default(),
            slow_consumers: Counter::default(),
            backplane_published: Counter::default(),
            backplane_publish_failures: Counter::default(),
            backplane_received: Counter::default(),
            backplane_resubscribes: Counter::default(),
            backplane_catch_ups: Counter::default(),
            pushes_sent: Counter::default(),
            pushes_failed: Counter::default(),
            uploads: Counter::default(),
        };
        registry.register("uploads", "Files uploaded and stored", m.uploads.clone());
        registry.register(
            "connections",
            "Open WebSocket connections",
            m.connections.clone(),
        );
        registry.register(
            "accepted_connections",
            "WebSocket connections accepted",
            m.connections_total.clone(),
        );
        registry.register("messages", "Messages stored", m.messages.clone());
        registry.register(
            "changes",
            "Edits, deletions and reactions stored",
            m.changes.clone(),
        );
        registry.register(
            "deliveries",
            "Message frames queued to connections",
            m.deliveries.clone(),
        );
        registry.register(
            "store_errors",
            "Appends the store refused",
            m.store_errors.clone(),
        );
        registry.register(
            "gap_fills",
            "Sequencer gaps filled from the store",
            m.gap_fills.clone(),
        );
        registry.register(
            "rejected_frames",
            "Client frames answered with an error",
            m.rejected_frames.clone(),
        );
        registry.register(
            "rate_limited",
            "Sends refused for rate",
            m.rate_limited.clone(),
        );
        registry.register(
            "slow_consumers",
            "Connections cut for not keeping up",
            m.slow_consumers.clone(),
        );
        registry.register(
            "backplane_published",
            "Events published to other nodes",
            m.backplane_published.clone(),
        );
        registry.register(
            "backplane_publish_failures",
            "Events that could not be published to other nodes",
            m.backplane_publish_failures.clone(),
        );
        registry.register(
            "backplane_received",
            "Events received from other nodes",
            m.backplane_received.clone(),
        );
        registry.register(
            "backplane_resubscribes",
            "Subscriptions to other nodes (re)established",
            m.backplane_resubscribes.clone(),
        );
        registry.register(
            "backplane_catch_ups",
            "Rooms caught up from the store after a lost subscription or node",
            m.backplane_catch_ups.clone(),
        );
        registry.register(
            "pushes_sent",
            "Web Pushes accepted by push services",
            m.pushes_sent.clone(),
        );
        registry.register(
            "pushes_failed",
            "Web Pushes given up or dropped from a full queue",
            m.pushes_failed.clone(),
        );
        Metrics { registry, ..m }
    }

    /// The text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
