//! Decoding events as producers put them on the wire: the Go producer's exact bytes, numbers,
//! StarlingX timestamps, unknown fields, garbage.

use ptp_events_client::{
    ClockClass, Measurement, Resource, SyncState, decode_event, decode_events,
};

/// The Go producer's notifications, byte for byte (wire-api-v2.md §5.3).
const GO_LOCK_STATE: &str = r#"{"specversion":"1.0","id":"97df4082-6826-4326-a1e1-18cd4bbe8361","source":"/sync/ptp-status/lock-state","type":"event.sync.ptp-status.ptp-state-change","time":"2026-11-25T13:45:19.702815727Z","data":{"version":"1.0","values":[{"ResourceAddress":"/cluster/node/node1/ens1fx/master","data_type":"notification","value_type":"enumeration","value":"LOCKED"},{"ResourceAddress":"/cluster/node/node1/ens1fx/master","data_type":"metric","value_type":"decimal64.3","value":"-5"}]}}"#;
const GO_SYNC_STATE: &str = r#"{"specversion":"1.0","id":"5a44ee8e-6ed1-4d0f-939b-6acf03e3fe5a","source":"/sync/sync-status/sync-state","type":"event.sync.sync-status.synchronization-state-change","time":"2026-11-25T13:45:19.703035615Z","data":{"version":"1.0","values":[{"ResourceAddress":"/cluster/node/node1/sync/sync-status/sync-state","data_type":"notification","value_type":"enumeration","value":"LOCKED"}]}}"#;
const GO_OS_CLOCK: &str = r#"{"specversion":"1.0","id":"bbd21f37-1407-4ea3-ae5f-f3dac287f9d3","source":"/sync/sync-status/os-clock-sync-state","type":"event.sync.sync-status.os-clock-sync-state-change","time":"2026-11-25T13:45:20.003919159Z","data":{"version":"1.0","values":[{"ResourceAddress":"/cluster/node/node1/CLOCK_REALTIME","data_type":"notification","value_type":"enumeration","value":"LOCKED"},{"ResourceAddress":"/cluster/node/node1/CLOCK_REALTIME","data_type":"metric","value_type":"decimal64.3","value":"3"}]}}"#;
const GO_CLOCK_CLASS: &str = r#"{"specversion":"1.0","id":"e14d5f3f-2454-4189-bfad-6192170b2341","source":"/sync/ptp-status/clock-class","type":"event.sync.ptp-status.ptp-clock-class-change","time":"2026-11-25T13:45:20.304716946Z","data":{"version":"1.0","values":[{"ResourceAddress":"/cluster/node/node1/ens1fx/master","data_type":"metric","value_type":"decimal64.3","value":"6"}]}}"#;
const GO_GNSS: &str = r#"{"specversion":"1.0","id":"872896fb-1db4-4d9e-9346-b159f99d6158","source":"/sync/gnss-status/gnss-sync-status","type":"event.sync.gnss-status.gnss-state-change","time":"2026-11-25T13:45:47.550913575Z","data":{"version":"1.0","values":[{"ResourceAddress":"/cluster/node/node1/ens1fx/master","data_type":"notification","value_type":"enumeration","value":"SYNCHRONIZED"},{"ResourceAddress":"/cluster/node/node1/ens1fx/master","data_type":"metric","value_type":"decimal64.3","value":"5"},{"ResourceAddress":"/cluster/node/node1/ens1fx/master/gpsFix","data_type":"metric","value_type":"decimal64.3","value":"3"}]}}"#;
const GO_SYNCE_LOCK: &str = r#"{"specversion":"1.0","id":"7b27f753-8a90-4049-b854-76328231ee85","source":"/sync/synce-status/lock-state","type":"event.sync.synce-status.synce-state-change","time":"2026-11-25T13:45:48.151154062Z","data":{"version":"1.0","values":[{"ResourceAddress":"/cluster/node/node1/synce1/ens7f0","data_type":"metric","value_type":"decimal64.3","value":"LOCKED"}]}}"#;
const GO_SYNCE_QL: &str = r#"{"specversion":"1.0","id":"bd6f73b0-664e-49d3-8f5d-7077a06032ea","source":"/sync/synce-status/clock-quality","type":"event.sync.synce-status.synce-clock-quality-change","time":"2026-11-25T13:45:48.45138495Z","data":{"version":"1.0","values":[{"ResourceAddress":"/cluster/node/node1/synce1/ens7f0/Ql","data_type":"metric","value_type":"decimal64.3","value":"1"},{"ResourceAddress":"/cluster/node/node1/synce1/ens7f0/extQl","data_type":"metric","value_type":"decimal64.3","value":"32"}]}}"#;

#[test]
fn go_producer_bytes_decode_to_typed_events() {
    let e = decode_event(GO_LOCK_STATE.as_bytes()).unwrap();
    assert_eq!(e.resource(), Some(Resource::LockState));
    assert_eq!(e.id(), "97df4082-6826-4326-a1e1-18cd4bbe8361");
    assert_eq!(e.sync_state(), Some(SyncState::Locked));
    assert_eq!(e.offset_ns(), Some(-5));
    assert_eq!(e.readings()[0].address, "/cluster/node/node1/ens1fx/master");
    assert_eq!(e.time().timestamp_subsec_nanos(), 702_815_727);
    // The raw event is still there, and re-encodes to the same bytes.
    assert_eq!(e.raw().to_json(), GO_LOCK_STATE);

    let e = decode_event(GO_SYNC_STATE.as_bytes()).unwrap();
    assert_eq!(e.resource(), Some(Resource::SyncState));
    assert_eq!(e.sync_state(), Some(SyncState::Locked));
    assert_eq!(e.offset_ns(), None);

    let e = decode_event(GO_OS_CLOCK.as_bytes()).unwrap();
    assert_eq!(e.resource(), Some(Resource::OsClockSyncState));
    assert_eq!(
        (e.sync_state(), e.offset_ns()),
        (Some(SyncState::Locked), Some(3))
    );

    let e = decode_event(GO_CLOCK_CLASS.as_bytes()).unwrap();
    assert_eq!(e.resource(), Some(Resource::ClockClass));
    assert_eq!(e.clock_class(), Some(ClockClass::LOCKED));
    assert_eq!(e.sync_state(), None);

    let e = decode_event(GO_GNSS.as_bytes()).unwrap();
    assert_eq!(e.resource(), Some(Resource::GnssSyncStatus));
    assert_eq!(e.sync_state(), Some(SyncState::Synchronized));
    assert_eq!(e.offset_ns(), Some(5));
    assert_eq!(e.gps_fix(), Some(3));

    // Go sends the SyncE lock state as a metric whose value is a state.
    let e = decode_event(GO_SYNCE_LOCK.as_bytes()).unwrap();
    assert_eq!(e.resource(), Some(Resource::SynceLockState));
    assert_eq!(e.sync_state(), Some(SyncState::Locked));

    let e = decode_event(GO_SYNCE_QL.as_bytes()).unwrap();
    assert_eq!(e.resource(), Some(Resource::SynceClockQuality));
    assert_eq!(e.synce_quality(), (Some(1), Some(32)));
}

#[test]
fn holdover_and_freerun_with_the_process_down_offset() {
    let body = GO_OS_CLOCK
        .replace(r#""value":"LOCKED""#, r#""value":"FREERUN""#)
        .replace(r#""value":"3""#, r#""value":"-9999999999999999""#);
    let e = decode_event(body.as_bytes()).unwrap();
    assert_eq!(e.sync_state(), Some(SyncState::Freerun));
    assert_eq!(e.offset_ns(), Some(oran_api_offset()));
    let body = GO_LOCK_STATE.replace(r#""value":"LOCKED""#, r#""value":"HOLDOVER""#);
    assert_eq!(
        decode_event(body.as_bytes()).unwrap().sync_state(),
        Some(SyncState::Holdover)
    );
}

fn oran_api_offset() -> i64 {
    ptp_events_client::wire::FREERUN_OFFSET_PROCESS_DOWN
}

#[test]
fn numeric_values_are_accepted() {
    let body = GO_GNSS
        .replace(r#""value":"5""#, r#""value":5.4"#)
        .replace(r#""value":"3""#, r#""value":3"#);
    let e = decode_event(body.as_bytes()).unwrap();
    assert_eq!(e.offset_ns(), Some(5));
    assert_eq!(e.gps_fix(), Some(3));
    let body = GO_CLOCK_CLASS.replace(r#""value":"6""#, r#""value":248"#);
    assert_eq!(
        decode_event(body.as_bytes()).unwrap().clock_class(),
        Some(ClockClass::DEFAULT)
    );
}

#[test]
fn starlingx_and_other_timestamps_are_accepted() {
    for (time, nanos) in [
        ("2024-11-15T15:22:33868726Z", 868_726_000), // StarlingX: no dot before the fraction
        ("2024-11-15T15:22:33.868726Z", 868_726_000),
        ("2024-11-15T15:22:33Z", 0), // no fraction
        ("2024-11-15 15:22:33.868726", 868_726_000),
        ("2024-11-15T16:22:33.5+01:00", 500_000_000),
    ] {
        let body = GO_SYNC_STATE.replace("2026-11-25T13:45:19.703035615Z", time);
        let e = decode_event(body.as_bytes()).unwrap_or_else(|e| panic!("{time}: {e}"));
        assert_eq!(e.time().timestamp_subsec_nanos(), nanos, "{time}");
        assert_eq!(
            e.time().format("%Y-%m-%d %H:%M:%S").to_string(),
            "2024-11-15 15:22:33",
            "{time}"
        );
    }
}

#[test]
fn unknown_fields_and_unknown_states_are_tolerated() {
    let body = r#"{"specversion":"1.0","id":"x","source":"/sync/gnss-status/gnss-sync-status","type":"event.sync.gnss-status.gnss-state-change","subject":"s","datacontenttype":"application/json","extension":{"a":[1,2]},"time":"2026-11-25T13:45:47Z","data":{"version":"1.0","extra":true,"values":[{"ResourceAddress":"/././ens1f0","data_type":"notification","value_type":"enumeration","value":"NOT_SYNCHRONIZED","more":null}]}}"#;
    let e = decode_event(body.as_bytes()).unwrap();
    assert_eq!(e.sync_state(), None);
    assert_eq!(
        e.readings()[0].measurement,
        Measurement::UnknownState("NOT_SYNCHRONIZED".into())
    );
    // CEP v2 puts the full address in `source`.
    let body = GO_LOCK_STATE.replace(
        r#""source":"/sync/ptp-status/lock-state""#,
        r#""source":"/cluster/node/node1/sync/ptp-status/lock-state""#,
    );
    assert_eq!(
        decode_event(body.as_bytes()).unwrap().resource(),
        Some(Resource::LockState)
    );
}

#[test]
fn garbage_gets_a_clear_error_never_a_panic() {
    let cases: &[&[u8]] = &[
        b"",
        b"   ",
        b"garbage",
        b"{",
        b"[]",
        b"null",
        b"{}",
        b"\xff\xfe\x00",
        br#"{"specversion":"","id":"x","source":"s","type":"t","time":"2026-11-25T13:45:47Z","data":{}}"#,
        br#"{"specversion":"1.0","id":"x","source":"s","type":"t","time":"never","data":{}}"#,
        br#"{"specversion":"1.0","id":"x","source":"s","type":"t","time":"2026-11-25T13:45:47Z","data":{"values":[{"value":{}}]}}"#,
    ];
    for body in cases {
        let err = decode_event(body).expect_err(&String::from_utf8_lossy(body));
        assert!(!err.to_string().is_empty());
    }
    let err = decode_event(b"garbage").unwrap_err().to_string();
    assert!(err.contains("not a CloudEvent"), "{err}");
    let err = decode_event(b"").unwrap_err().to_string();
    assert!(err.contains("empty body"), "{err}");
    let err = decode_event(
        br#"{"specversion":"1.0","id":"x","source":"s","type":"t","time":"never","data":{}}"#,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("never"), "{err}");
}

#[test]
fn current_state_arrays_decode_to_several_events() {
    let body = format!("[{GO_SYNC_STATE},{GO_LOCK_STATE}]");
    let events = decode_events(body.as_bytes()).unwrap();
    assert_eq!(events.len(), 2);
    assert_eq!(events[1].resource(), Some(Resource::LockState));
    assert_eq!(decode_events(GO_SYNC_STATE.as_bytes()).unwrap().len(), 1);
    let err = decode_events(b"[{}]").unwrap_err().to_string();
    assert!(err.starts_with("event #0"), "{err}");
}
