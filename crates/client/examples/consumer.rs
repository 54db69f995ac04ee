//! A minimal consumer: receive the node's PTP events and react to FREERUN.
//!
//! ```sh
//! # a producer on 127.0.0.1:9043 for node "lab-node" (see docs/consumer.md), then:
//! cargo run -p ptp-events-client --example consumer -- lab-node 127.0.0.1:9043
//! ```

use std::time::Duration;

use ptp_events_client::{
    Client, Measurement, Receiver, Subscriber, SyncState, ptp_resource_addresses, receiver,
};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt().init();
    let mut args = std::env::args().skip(1);
    let node = args.next().unwrap_or_else(|| "lab-node".into());
    let publisher = args.next().unwrap_or_else(|| "127.0.0.1:9043".into());

    // 1. Where the producer will POST events (port 0: any free port).
    let (handler, mut events) = receiver::channel(256);
    let receiver = Receiver::bind("127.0.0.1:0", handler).await?;

    // 2. Subscribe to the five PTP resources of the node, and keep the subscriptions alive.
    let client = Client::new(&publisher)?;
    let subscriptions = Subscriber::new(receiver.endpoint_uri())
        .publisher(client.clone())
        .resources(ptp_resource_addresses(&node))
        .spawn();
    if !subscriptions.wait_subscribed(Duration::from_secs(30)).await {
        eprintln!("not subscribed yet: {:?}", subscriptions.status());
    }

    // 3. React to events until Ctrl-C.
    loop {
        tokio::select! {
            Some(event) = events.recv() => {
                println!("{event}  (latency {} ms)", event.latency().num_milliseconds());
                if event.sync_state() == Some(SyncState::Freerun) && !event.is_placeholder() {
                    println!("  -> {:?} is FREERUN: stop transmitting", event.resource());
                }
                for r in event.readings() {
                    if let Measurement::ClockClass(c) = r.measurement {
                        println!("  clock class of {} is now {c}", r.address);
                    }
                }
            }
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    subscriptions.stop_and_unsubscribe().await;
    receiver.stop().await?;
    Ok(())
}
