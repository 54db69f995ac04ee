//! Consumer SDK for the PTP events REST API v2 (the O-RAN O-Cloud Notification API as served by
//! this project's producer and by Red Hat's `cloud-event-proxy`).
//!
//! An application that must know when its node's time synchronisation changes (a vDU that must
//! stop transmitting in FREERUN) does three things: it **listens** for events on an HTTP
//! endpoint, it **subscribes** that endpoint to the resources it cares about on the node's
//! publisher, and it may **pull** the current state at any time. This crate does each in a line.
//!
//! # From nothing to receiving events
//!
//! ```no_run
//! use ptp_events_client::{Client, Receiver, Resource, SyncState, resource_address};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! // 1. Listen for events (answers 204, decodes leniently, hands you typed events).
//! let receiver = Receiver::bind("127.0.0.1:8989", |event: ptp_events_client::Event| async move {
//!     if event.sync_state() == Some(SyncState::Freerun) {
//!         eprintln!("lost sync: {event}");
//!     }
//!     println!("{:?}: {:?} offset {:?} ns", event.resource(), event.sync_state(), event.offset_ns());
//! })
//! .await?;
//!
//! // 2. Subscribe that endpoint on the node's publisher (the initial notification arrives
//! //    before this returns).
//! let publisher = Client::new("localhost:9043")?;
//! let lock_state = resource_address("lab-node", Resource::LockState);
//! publisher.subscribe(&lock_state, &receiver.endpoint_uri()).await?;
//!
//! // 3. Pull the current state whenever you want it.
//! let now = publisher.current_state(&lock_state).await?;
//! println!("now: {:?}", now.sync_state());
//! # Ok(()) }
//! ```
//!
//! For a long-running application, let a [`Subscriber`] keep the subscriptions alive on one or
//! several publishers: it waits until each is healthy, subscribes, recovers from 409 and
//! re-subscribes when a publisher restarts and loses them. `examples/consumer.rs` and the
//! `ptp-events consumer` subcommand (the reference consumer) put the pieces together.
//!
//! # The pieces
//! - [`Client`]: health, create/list/get/delete subscriptions, delete all, CurrentState; typed
//!   [`Error`]s from the status codes (400, 404, 409, with the producer's problem `detail`), and
//!   timeouts.
//! - [`receiver`]: the HTTP endpoint (a ready server, [`Receiver`], or an axum router) and
//!   [`decode_event`] for other frameworks.
//! - [`Event`]: the raw [`CloudEvent`] with typed [`Reading`]s ([`SyncState`], [`ClockClass`],
//!   offsets, GNSS fix, SyncE quality levels).
//! - Address helpers: [`resource_address`], [`ptp_resource_addresses`],
//!   [`publisher_service_address`], [`substitute_node_tokens`].
//!
//! What it is not: a producer, or an HTTPS client (the API is plain HTTP inside the node/pod).
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod address;
mod client;
mod error;
mod event;
pub mod receiver;
mod subscriber;

pub use address::{
    DEFAULT_NAMESPACE, DEFAULT_PUBLISHER_PORT, PTP_RESOURCES, expand_resource,
    ptp_resource_addresses, publisher_service_address, resource_address, short_node_name,
    substitute_node_tokens,
};
pub use client::{
    Client, ClientBuilder, DEFAULT_CONNECT_TIMEOUT, DEFAULT_TIMEOUT, install_crypto_provider,
};
pub use error::{ApiError, Error};
pub use event::{DecodeError, Event, Measurement, Reading, decode_event, decode_events};
pub use receiver::{EventHandler, Receiver, ReceiverTls};
pub use subscriber::{
    ConflictPolicy, DEFAULT_CHECK_INTERVAL, DEFAULT_RETRY_INTERVAL, PublisherStatus,
    SubscribeOutcome, Subscriber, SubscriberHandle,
};

/// The wire types (re-exported from the `oran-api` crate).
pub use oran_api::{
    API_BASE_PATH, ClockClass, CloudEvent, EventTime, Resource, SubscriptionInfo, SyncState, Value,
};

/// The wire types crate, for what is not re-exported at the root.
pub use oran_api as wire;

/// `docs/consumer.md`, compiled as a doc test so that its code cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/consumer.md")]
pub struct ConsumerGuide;
